"""One unit of work's connection, and a transaction begun only when something is written.

A read-only unit on PostgreSQL then costs its SELECTs and nothing else: no BEGIN before them
and no ROLLBACK when the connection goes back to the pool. That is two round trips fewer per
read, and psycopg keeps its prepared statements (it drops them all at every ROLLBACK).

Why reads may run outside the transaction: under READ COMMITTED (PostgreSQL's default, and
the only level this is done for) every statement of a transaction takes a fresh snapshot, and
a plain SELECT takes no row locks, so a SELECT sees the same whether it runs in autocommit
mode or in a transaction that has not yet written anything. The first write switches the
connection out of autocommit mode; from then on every statement, reads included, is in one
transaction, which ``commit`` ends and which is rolled back if the unit ends without it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

Params = Mapping[str, Any]


class LazyTransaction:
    """The statements of one unit of work, on one connection checked out at the first one.

    ``read`` is for statements that neither write nor lock; everything else goes through
    ``write`` (or ``savepoint``), which makes sure the transaction has begun. Reads run in
    autocommit mode until the first write only when that is safe: PostgreSQL, READ
    COMMITTED, and an engine whose connections are in autocommit mode
    (``create_engine(..., autocommit=True)``). Anywhere else (SQLite, whose engine issues
    ``BEGIN IMMEDIATE``; an engine without autocommit; another isolation level) SQLAlchemy
    begins one transaction at the first statement, reads included, as it always did.
    """

    __slots__ = ("_connection", "_engine", "_reads_outside")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        # True while statements run in autocommit mode, outside any transaction.
        self._reads_outside = False

    @property
    def dialect_name(self) -> str:
        """``postgresql`` or ``sqlite``: for the few statements written for one of them."""
        return self._engine.dialect.name

    async def read(self, statement: Executable, params: Params | None = None) -> Result[Any]:
        connection = self._connection or await self._connect()
        return await connection.execute(statement, params)

    async def write(
        self, statement: Executable, params: Params | Sequence[Params] | None = None
    ) -> Result[Any]:
        """Run ``statement`` in the transaction; a list of parameter sets runs it for each."""
        connection = await self._in_transaction()
        return await connection.execute(statement, params)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Statements inside are undone, and the transaction stays usable, if they fail."""
        connection = await self._in_transaction()
        async with connection.begin_nested():
            yield

    async def commit(self) -> None:
        if self._connection is not None:
            await self._connection.commit()

    async def rollback(self) -> None:
        if self._connection is not None:
            await self._connection.rollback()

    async def close(self) -> None:
        """Roll back what was not committed and return the connection to the pool."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def _connect(self) -> AsyncConnection:
        connection = await self._engine.connect()
        self._connection = connection
        self._reads_outside = _autocommit_is_safe_for_reads(connection)
        return connection

    async def _in_transaction(self) -> AsyncConnection:
        connection = self._connection or await self._connect()
        if self._reads_outside:
            self._reads_outside = False
            if connection.in_transaction():
                # SQLAlchemy's bookkeeping for the autocommit reads; nothing is sent.
                await connection.commit()
            # Out of autocommit mode until the connection returns to the pool (SQLAlchemy
            # restores the engine's setting then): the next statement begins the
            # transaction.
            await connection.execution_options(
                isolation_level=connection.default_isolation_level or "READ COMMITTED"
            )
        return connection


def _autocommit_is_safe_for_reads(connection: AsyncConnection) -> bool:
    dialect = connection.dialect
    if dialect.name != "postgresql" or connection.default_isolation_level != "READ COMMITTED":
        return False
    sync = connection.sync_connection
    dbapi_connection = None if sync is None else sync.connection.dbapi_connection
    if dbapi_connection is None:  # pragma: no cover - set once the connection has started
        return False
    return bool(dialect.detect_autocommit_setting(dbapi_connection))
