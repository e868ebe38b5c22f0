"""Migrated databases shared by the whole test session.

``database_url`` runs a test once on SQLite (a temporary file) and once on PostgreSQL
(``TEST_DATABASE_URL``). Each database is migrated once per session and never emptied, so
tests make their data unique (a uuid in every username) instead of counting on a clean slate.
PostgreSQL tests are skipped when the server cannot be reached, unless REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, NullPool, make_url, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from healthcare.adapters.persistence.sqlalchemy import (
    create_engine,
    normalise_url,
    upgrade,
)
from healthcare.adapters.persistence.sqlalchemy.database import Database

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/healthcare_test"
_URL_FIXTURES = {"sqlite": "sqlite_url", "postgresql": "postgres_url"}


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL as psycopg's own connections take it, for tests that hold a session
    of their own beside the application's."""
    return make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(False)


def _postgres_test_url() -> str:
    return normalise_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_POSTGRES_URL))


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "test.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An autocommit engine on the server's ``postgres`` database, to create databases."""
    url = make_url(_postgres_test_url()).set(database="postgres")
    admin = create_sync_engine(
        url, isolation_level="AUTOCOMMIT", poolclass=NullPool, connect_args={"connect_timeout": 5}
    )
    try:
        with admin.connect():
            pass
    except OperationalError as error:
        message = f"PostgreSQL is unreachable at {url.render_as_string()}: {error.orig}"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    yield admin
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_url(postgres_admin: Engine) -> str:
    url = _postgres_test_url()
    name = make_url(url).database
    with postgres_admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).first()
        if exists is None:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    # A clean schema per session, so the migrations run for real every time.
    database = create_sync_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with database.connect() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    database.dispose()
    upgrade(url)
    return url


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(_URL_FIXTURES[request.param])
    return url


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def uow_database(database_url: str) -> AsyncIterator[Database]:
    """As the application's: psycopg's pool on PostgreSQL, SQLAlchemy's engine on SQLite."""
    database = Database(database_url)
    yield database
    await database.dispose()
