"""The database a unit of work runs on: SQLAlchemy's engine, and psycopg's pool if PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from healthcare.adapters.persistence.sqlalchemy.engine import create_engine, normalise_url
from healthcare.adapters.persistence.sqlalchemy.pool import DriverPool
from healthcare.adapters.persistence.sqlalchemy.transaction import (
    DriverTransaction,
    EngineTransaction,
    Transaction,
)


class Database:
    """Builds each unit of work's ``Transaction``.

    On PostgreSQL the units run on psycopg's pool (``DriverTransaction``); SQLAlchemy's
    engine then only compiles their statements and answers the readiness probe, so its own
    pool is kept to one connection. On SQLite everything goes through the engine.

    Every wait is bounded: on PostgreSQL each pooled session runs with ``statement_timeout``
    and ``lock_timeout``; SQLite has no statement timeout, and its only wait (for the write
    lock) is bounded by its busy timeout, ``lock_timeout_ms`` unless given as
    ``busy_timeout_ms``. Either ends as Unavailable.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        pool_timeout_seconds: float = 5.0,
        statement_timeout_ms: int = 5000,
        lock_timeout_ms: int = 2000,
        **engine_options: Any,
    ) -> None:
        postgresql = make_url(normalise_url(url)).get_backend_name() == "postgresql"
        if not postgresql:
            engine_options.setdefault("busy_timeout_ms", lock_timeout_ms)
        self.engine: AsyncEngine = create_engine(
            url,
            pool_size=1 if postgresql else pool_size,
            max_overflow=0,
            **engine_options,
        )
        # A fixed pool: connections opened for a burst and closed after it would mean a
        # reconnect to PostgreSQL for most requests under load.
        self.pool = (
            DriverPool(
                url,
                size=pool_size,
                timeout_seconds=pool_timeout_seconds,
                statement_timeout_ms=statement_timeout_ms,
                lock_timeout_ms=lock_timeout_ms,
            )
            if postgresql
            else None
        )

    def transaction(self) -> Transaction:
        if self.pool is not None:
            return DriverTransaction(self.pool, self.engine.dialect)
        return EngineTransaction(self.engine)

    async def dispose(self) -> None:
        if self.pool is not None:
            await self.pool.close()
        await self.engine.dispose()
