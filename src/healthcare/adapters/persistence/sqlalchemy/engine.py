"""Async engines for PostgreSQL (psycopg) and SQLite (aiosqlite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

_ALIASES = {
    "postgresql://": "postgresql+psycopg://",
    "postgres://": "postgresql+psycopg://",
    "sqlite://": "sqlite+aiosqlite://",
}


def normalise_url(url: str) -> str:
    """Give plain ``postgresql://``, ``postgres://`` and ``sqlite://`` URLs our async driver."""
    for plain, with_driver in _ALIASES.items():
        if url.startswith(plain):
            return with_driver + url[len(plain) :]
    return url


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 10,
    busy_timeout_ms: int = 30_000,
    enforce_foreign_keys: bool = True,
    **opts: Any,
) -> AsyncEngine:
    """An engine for ``url``; ``opts`` go to SQLAlchemy's ``create_async_engine``.

    ``pool_size``/``max_overflow`` apply to PostgreSQL; ``busy_timeout_ms`` and
    ``enforce_foreign_keys`` to SQLite (migrations turn the latter off, see env.py). On
    PostgreSQL the units of work use psycopg's pool instead (see database.py).
    """
    # Statement parameters are patient data and password hashes: keep them out of error
    # messages, which end up in logs.
    opts.setdefault("hide_parameters", True)
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite":
        engine = _create_async_engine(parsed, **opts)
        _configure_sqlite(engine, parsed, busy_timeout_ms, enforce_foreign_keys)
        return engine
    if "poolclass" not in opts:
        opts.setdefault("pool_size", pool_size)
        opts.setdefault("max_overflow", max_overflow)
    # No pre-ping: a dead connection fails one request instead of costing every checkout
    # a round trip.
    opts.setdefault("pool_pre_ping", False)
    return _create_async_engine(parsed, **opts)


def _is_file_database(url: URL) -> bool:
    database = url.database or ""
    return (
        database not in ("", ":memory:")
        and "mode=memory" not in database
        and (url.query.get("mode") != "memory")
    )


def _configure_sqlite(
    engine: AsyncEngine, url: URL, busy_timeout_ms: int, enforce_foreign_keys: bool
) -> None:
    file_database = _is_file_database(url)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module, whose legacy mode starts no
        # transaction before SELECT or SAVEPOINT (breaking savepoints); _on_begin starts it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Off by default in SQLite; without it ON DELETE CASCADE does nothing.
        cursor.execute(f"PRAGMA foreign_keys={'ON' if enforce_foreign_keys else 'OFF'}")
        if file_database:
            # WAL lets readers run beside the single writer; the busy timeout makes a
            # second writer wait for the first instead of failing at once.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front. A deferred transaction that read first
        # and writes later fails with "database is locked" (no waiting) as soon as another
        # writer committed in between; this way the second writer simply waits its turn.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
