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

Those autocommit reads also skip SQLAlchemy's execution machinery: each statement is compiled
once, and run on psycopg's own connection (the one SQLAlchemy checked out), its rows handed
back as plain tuples. SQLAlchemy's per-execution work (greenlet hops, execution context,
result processing) cost more CPU than psycopg's own; the result processing it would do is
none for these column types, except DateTimeUTC's, which returns psycopg's timezone-aware
values unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import psycopg
from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

Params = Mapping[str, Any]


class Rows(Protocol):
    """What the repositories use of a result: SQLAlchemy's Result, or _Rows."""

    def first(self) -> Any: ...

    def one(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...

    def scalar_one(self) -> Any: ...


class _Rows:
    __slots__ = ("_rows",)

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self._rows = rows

    def first(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def one(self) -> tuple[Any, ...]:
        if not self._rows:
            raise NoResultFound("No row was found when one was required")
        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self._rows[0]

    def all(self) -> list[tuple[Any, ...]]:
        return self._rows

    def scalar_one(self) -> Any:
        return self.one()[0]


# statement -> (SQL for psycopg, values of the parameters the statement itself binds). Keyed
# by the statement object (module constants, so a handful); bounded for ad hoc ones.
_COMPILED: dict[ClauseElement, tuple[str, dict[str, Any]] | None] = {}
_COMPILED_MAX = 512


def _compiled(statement: Executable, dialect: Dialect) -> tuple[str, dict[str, Any]] | None:
    """The statement as psycopg runs it, or None if it needs SQLAlchemy at execution time."""
    if not isinstance(statement, ClauseElement):
        return None
    try:
        return _COMPILED[statement]
    except KeyError:
        pass
    compiled = statement.compile(dialect=dialect)
    simple = (
        isinstance(compiled, SQLCompiler)
        and not compiled.positional
        and "POSTCOMPILE" not in compiled.string
        and all(b.callable is None and not b.expanding for b in compiled.binds.values())
    )
    entry = None
    if simple and isinstance(compiled, SQLCompiler):
        fixed = {
            compiled.bind_names[b]: b.value for b in compiled.binds.values() if b.value is not None
        }
        entry = (compiled.string, fixed)
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.clear()
    _COMPILED[statement] = entry
    return entry


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

    __slots__ = ("_connection", "_driver", "_engine", "_reads_outside")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        # True while statements run in autocommit mode, outside any transaction; then
        # _driver is psycopg's connection, which reads use directly.
        self._reads_outside = False
        self._driver: psycopg.AsyncConnection[Any] | None = None

    @property
    def dialect_name(self) -> str:
        """``postgresql`` or ``sqlite``: for the few statements written for one of them."""
        return self._engine.dialect.name

    async def read(self, statement: Executable, params: Params | None = None) -> Rows:
        connection = self._connection or await self._connect()
        if self._driver is not None and (sql := _compiled(statement, connection.dialect)):
            return await self._read_directly(self._driver, sql, params)
        return await connection.execute(statement, params)

    async def _read_directly(
        self,
        driver: psycopg.AsyncConnection[Any],
        sql: tuple[str, dict[str, Any]],
        params: Params | None,
    ) -> _Rows:
        query, fixed = sql
        values = {**fixed, **params} if params else fixed
        try:
            async with driver.cursor() as cursor:
                await cursor.execute(query, values)
                rows = await cursor.fetchall()
        except psycopg.Error as error:
            # As SQLAlchemy would: a lost connection must not go back to the pool, and the
            # error is raised as SQLAlchemy's, without the parameters (patient data).
            if driver.broken and self._connection is not None:
                await self._connection.invalidate()
            raise DBAPIError.instance(
                query, None, error, psycopg.Error, hide_parameters=True
            ) from error
        return _Rows(rows)

    async def write(
        self, statement: Executable, params: Params | Sequence[Params] | None = None
    ) -> Rows:
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
        self._driver = None
        if connection is not None:
            await connection.close()

    async def _connect(self) -> AsyncConnection:
        connection = await self._engine.connect()
        self._connection = connection
        self._reads_outside = _autocommit_is_safe_for_reads(connection)
        if self._reads_outside:
            driver = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
            self._driver = driver if isinstance(driver, psycopg.AsyncConnection) else None
        return connection

    async def _in_transaction(self) -> AsyncConnection:
        connection = self._connection or await self._connect()
        if self._reads_outside:
            self._reads_outside = False
            self._driver = None
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
