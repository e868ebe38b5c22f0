"""The adapters the repository contract runs on: SQLite, PostgreSQL and memory."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from sqlalchemy import Engine, make_url

from healthcare.adapters.persistence.memory import MemoryStore, MemoryUnitOfWork
from healthcare.adapters.persistence.sqlalchemy import SqlAlchemyUnitOfWork
from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.application.ports import UnitOfWork

# Typed as the port, so mypy checks that the adapter implements it.
UowFactory = Callable[[], UnitOfWork]


@pytest.fixture(scope="session")
def memory_store() -> MemoryStore:
    # Shared by the session, as the databases are: tests keep their data apart themselves.
    return MemoryStore()


@pytest.fixture(scope="session")
async def sqlite_uow_database(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_url)
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def postgresql_uow_database(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url)
    yield database
    await database.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "memory"])
def new_uow(request: pytest.FixtureRequest) -> UowFactory:
    if request.param == "memory":
        store: MemoryStore = request.getfixturevalue("memory_store")
        return lambda: MemoryUnitOfWork(store)
    database: Database = request.getfixturevalue(f"{request.param}_uow_database")
    return lambda: SqlAlchemyUnitOfWork(database)


@pytest.fixture
def sql_new_uow(uow_database: Database) -> UowFactory:
    """On the database of ``engine``, for tests that also look at it directly."""
    return lambda: SqlAlchemyUnitOfWork(uow_database)


@pytest.fixture
def throwaway_postgres_url(postgres_admin: Engine) -> Iterator[str]:
    """A database of its own, for tests that go down to base or shape the statistics."""
    name = f"healthcare_throwaway_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield make_url(postgres_admin.url).set(database=name).render_as_string(hide_password=False)
    with postgres_admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
