"""Schema migrations (Alembic), driven from code: no alembic.ini is needed.

The functions are synchronous and run their own event loop (``asyncio.run``), so call them
from synchronous code, or from async code through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.engine import Connection

from healthcare.adapters.persistence.sqlalchemy.engine import create_engine

SCRIPT_LOCATION = Path(__file__).resolve().parent


def alembic_config(url: str) -> Config:
    """A configuration for ``alembic.command`` functions (``revision``, ``history``...)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    # Not a main option: ConfigParser would treat any "%" in the URL (an escaped password
    # character) as interpolation.
    config.attributes["url"] = url
    return config


def head() -> str:
    """The newest revision the code knows."""
    revision = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert revision is not None  # there are migrations
    return revision


def history() -> list[tuple[str, str | None, str]]:
    """Every revision the code knows, newest first: (revision, its parent, its summary)."""
    script = ScriptDirectory.from_config(alembic_config(""))
    return [
        (str(rev.revision), _parent(rev.down_revision), (rev.doc or "").strip())
        for rev in script.walk_revisions()
    ]


def _parent(down: str | Sequence[str] | None) -> str | None:
    return down if down is None or isinstance(down, str) else ",".join(down)


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database is at; None when it has never been migrated."""
    return asyncio.run(_current(url))


async def _current(url: str) -> str | None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_revision_of)
    finally:
        await engine.dispose()


def _revision_of(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


__all__ = ["SCRIPT_LOCATION", "alembic_config", "current", "downgrade", "history", "upgrade"]
