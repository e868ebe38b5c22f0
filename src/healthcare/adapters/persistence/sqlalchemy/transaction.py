"""A unit of work's statements, on one connection, and its transaction.

Two implementations, chosen by ``Database`` (database.py):

``DriverTransaction`` (PostgreSQL) runs every statement on a connection from psycopg's own
pool, in autocommit mode, and controls the transaction itself:

- Reads before the first write run outside any transaction: no BEGIN before them and no
  ROLLBACK after. The connections run READ COMMITTED, where every statement of a transaction
  takes a fresh snapshot and a plain SELECT takes no row locks, so a SELECT sees the same
  whether it runs alone or in a transaction that has not yet written anything.
- The first write begins the transaction; from then on every statement, reads included, is
  in it, until ``commit`` ends it. Except a final write (``commit_with_next_write``) with
  nothing before it: it and its audit row are one statement (a data-modifying WITH), which
  commits by itself in autocommit mode, so a create or an update is one round trip.
- ``write_at_commit`` statements, whose results nobody reads (the audit trail's inserts),
  wait for ``commit`` and go just before COMMIT, so a unit that fails first never sends them.
- Round trips cost CPU on both ends (about 140 µs of ours each, measured one at a time), so
  in a transaction BEGIN travels in one message with the first write, and an audit insert
  with COMMIT. Those messages use the simple query protocol,
  which carries several statements; psycopg's client-side binding quotes their values
  (``AsyncClientCursor``), and PostgreSQL stops at the first that fails, so a failed insert
  never reaches its COMMIT. Everything else is bound server-side and prepared.
- A unit that ends without committing is rolled back before its connection goes back.

This skips SQLAlchemy's per-execution work (greenlet hops, execution context, result
processing) and its pool: in-process, a create took 1.85 ms of CPU through SQLAlchemy's
connection and 1.12 ms on psycopg's, and checking a connection out of SQLAlchemy's pool and
back cost 57 µs against 6 µs for psycopg's. (psycopg's pipeline mode, which would send BEGIN
with the first write, cost more CPU in its Python loop than the round trip it saves.) Each
statement is still built with SQLAlchemy and compiled once for psycopg; its parameters pass
through the column types' bind processors (DateTimeUTC's refuses naive times), and rows come
back as plain tuples (the only result processing these column types have is DateTimeUTC's,
which returns psycopg's timezone-aware values unchanged). Errors are SQLAlchemy's, with the
parameters hidden.

``EngineTransaction`` (SQLite) leaves everything to SQLAlchemy: one transaction begun at
the first statement (the engine issues ``BEGIN IMMEDIATE``), reads included.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from typing import Any, Protocol, TypeVar

import psycopg
import psycopg.errors
from psycopg.pq import ExecStatus, TransactionStatus
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Delete, Dialect, Select, Table, Update, bindparam, insert, select
from sqlalchemy.exc import (
    DBAPIError,
    MultipleResultsFound,
    NoResultFound,
    OperationalError,
    StatementError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ClauseElement, Executable, Insert
from sqlalchemy.sql.compiler import SQLCompiler

from healthcare.adapters.persistence.sqlalchemy.pool import DriverPool
from healthcare.domain.errors import Unavailable

Params = Mapping[str, Any]
_T = TypeVar("_T")
TUPLES_OK = ExecStatus.TUPLES_OK
IDLE = TransactionStatus.IDLE


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


_NO_ROWS = _Rows([])


class _Compiled:
    """A statement as psycopg runs it: its SQL, the values it binds itself, and the bind
    processors of its parameters' column types."""

    __slots__ = ("fixed", "processors", "sql")

    def __init__(
        self, sql: str, fixed: dict[str, Any], processors: Mapping[str, Callable[[Any], Any]]
    ) -> None:
        self.sql = sql
        self.fixed = fixed
        self.processors = processors

    def values(self, params: Params | None) -> dict[str, Any]:
        values = {**self.fixed, **params} if params else dict(self.fixed)
        for name, process in self.processors.items():
            if name in values:
                values[name] = process(values[name])
        return values


# (statement, the parameter names an INSERT or UPDATE sets) -> _Compiled, or None if the
# statement needs SQLAlchemy at execution time. Statements are module constants, so the hot
# keys are a few dozen; statements built per call (the audit trail's filters) come and go.
# Least recently used first: a flood of those pushes out only each other, never a hot one.
_COMPILED: OrderedDict[tuple[ClauseElement, tuple[str, ...], bool], _Compiled | None] = (
    OrderedDict()
)
_COMPILED_MAX = 512


def _compiled(
    statement: Executable,
    dialect: Dialect,
    column_keys: tuple[str, ...] = (),
    executemany: bool = False,
) -> _Compiled | None:
    if not isinstance(statement, ClauseElement):
        return None
    key = (statement, column_keys, executemany)
    try:
        found = _COMPILED[key]
    except KeyError:
        pass
    else:
        _COMPILED.move_to_end(key)
        return found
    # column_keys decides which columns an INSERT or UPDATE without .values() sets, as the
    # parameters' keys do when SQLAlchemy executes it.
    # (executemany: an INSERT then returns no primary key nobody asked for.)
    compiled = statement.compile(
        dialect=dialect, column_keys=list(column_keys), for_executemany=executemany
    )
    entry = None
    if (
        isinstance(compiled, SQLCompiler)
        and not compiled.positional
        and "POSTCOMPILE" not in compiled.string
        # Python-side defaults and onupdate values, which SQLAlchemy would compute.
        and not compiled.insert_prefetch
        and not compiled.update_prefetch
        and all(b.callable is None and not b.expanding for b in compiled.binds.values())
    ):
        names = compiled.bind_names
        fixed = {names[b]: b.value for b in compiled.binds.values() if b.value is not None}
        processors = {
            names[b]: process
            for b in compiled.binds.values()
            if (process := b.type.bind_processor(dialect)) is not None
        }
        entry = _Compiled(compiled.string, fixed, processors)
    if len(_COMPILED) >= _COMPILED_MAX:
        _COMPILED.popitem(last=False)
    _COMPILED[key] = entry
    return entry


class Transaction(Protocol):
    """What the repositories run their statements through.

    ``read`` is for statements that neither write nor lock; everything else goes through
    ``write`` (or ``savepoint``), or through ``write_at_commit`` if nothing reads its result.
    """

    @property
    def dialect_name(self) -> str:
        """``postgresql`` or ``sqlite``: for the few statements written for one of them."""
        ...

    async def read(self, statement: Executable, params: Params | None = None) -> Rows: ...

    async def write(
        self, statement: Executable, params: Params | Sequence[Params] | None = None
    ) -> Rows:
        """Run ``statement`` in the transaction; a list of parameter sets runs it for each."""
        ...

    async def write_at_commit(self, statement: Executable, params: Sequence[Params]) -> None:
        """Run ``statement`` once per parameter set, in the transaction, by the commit.

        Anything that makes them fail makes the commit fail.
        """
        ...

    async def append_at_commit(self, table: Table, rows: Sequence[Params]) -> None:
        """Insert ``rows`` (column name to value) into ``table`` by the commit, like
        ``write_at_commit``; PostgreSQL takes several by COPY."""
        ...

    async def insert_many(
        self, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
    ) -> list[int]:
        """Insert ``rows`` (values of ``columns``, as the database stores them) into
        ``table`` now, in the transaction; their new ids, in order. PostgreSQL draws the ids
        from the table's sequence and sends the rows by COPY: a bulk import's path."""
        ...

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """Statements inside are undone, and the transaction stays usable, if they fail."""
        ...

    def commit_with_next_write(self, table: Table, row: Params, id_column: str | None) -> None:
        """Insert ``row`` into ``table`` with the next single ``write``, if that write
        returns a row; ``id_column``, if named, takes the written row's first value.

        That write is the unit's last: it may commit the unit at once (PostgreSQL, when
        nothing else is pending), and nothing may be written after it (RuntimeError). A
        write that returns no row, fails, or is undone with its savepoint drops ``row``, and
        the unit goes on. It must say what it wrote (RETURNING): a SELECT only when it reads
        a data-modifying WITH (a locking read is not a write).
        """
        ...

    def refused_final_write(self) -> None:
        """The next write was refused before it reached the database: drop its row, as a
        write that fails does."""
        ...

    @property
    def final_row_committed(self) -> bool:
        """Whether ``commit_with_next_write``'s row went in with its write and is committed."""
        ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    async def close(self) -> None:
        """Roll back what was not committed and give the connection back."""
        ...


class _FinalRowState:
    """What both transactions keep for ``commit_with_next_write``: its row, once armed."""

    __slots__ = ("_final",)
    _final: _FinalRow | None

    def refused_final_write(self) -> None:
        if self._final is not None and not self._final.attached:
            self._final = None

    @property
    def final_row_committed(self) -> bool:
        return self._final is not None and self._final.committed

    def _final_kept_by_commit(self) -> None:
        if self._final is not None:
            self._final.committed = self._final.attached

    def _final_dropped_by_rollback(self) -> None:
        if self._final is not None and not self._final.committed:
            self._final = None


class EngineTransaction(_FinalRowState):
    """SQLAlchemy's connection and transaction, checked out at the first statement.

    Every call to the connection runs to its end even when the unit's task is cancelled
    (``_to_the_end``): aiosqlite abandons a connection whose call is cancelled half way, and
    the abandoned connection can keep SQLite's write lock until the garbage collector finds
    it, so every later writer waits out its busy timeout and fails.
    """

    __slots__ = ("_connection", "_engine")

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        self._final: _FinalRow | None = None

    @property
    def dialect_name(self) -> str:
        return self._engine.dialect.name

    async def _connected(self) -> AsyncConnection:
        if self._connection is None:
            return await self._finished(self._connect())
        return self._connection

    async def _finished(self, call: Awaitable[_T]) -> _T:
        try:
            return await _to_the_end(call)
        except OperationalError as error:
            # SQLite's lock held past the busy timeout by another writer, or a lost
            # connection: nothing the caller did wrong, and worth trying again later.
            if "database is locked" in str(error.orig):
                raise Unavailable(
                    "A statement waited past the busy timeout for the write lock", retry_after=1
                ) from error
            if error.connection_invalidated:
                raise Unavailable("The database cannot be reached") from error
            raise

    async def _connect(self) -> AsyncConnection:
        # Kept even if the caller is cancelled meanwhile, so that ``close`` returns it.
        self._connection = await self._engine.connect()
        return self._connection

    async def read(self, statement: Executable, params: Params | None = None) -> Rows:
        return await self._finished((await self._connected()).execute(statement, params))

    async def write(
        self, statement: Executable, params: Params | Sequence[Params] | None = None
    ) -> Rows:
        final = self._final
        _refuse_after_final(final)
        if final is not None and (params is None or isinstance(params, Mapping)):
            # The final write, with its row right after it in the same transaction.
            try:
                result = await self._finished((await self._connected()).execute(statement, params))
                rows = _Rows(list(result.all()) if result.returns_rows else [])
                written = rows.first()
                if written is not None:
                    await self.write_at_commit(
                        _insert_into(final.table), [final.with_written_id(written)]
                    )
            except BaseException:
                self._final = None  # a failed write keeps no event
                raise
            if written is None:
                self._final = None
            else:
                final.attached = True
            return rows
        return await self._finished((await self._connected()).execute(statement, params))

    async def write_at_commit(self, statement: Executable, params: Sequence[Params]) -> None:
        _refuse_after_final(self._final)
        if params:
            await self._finished((await self._connected()).execute(statement, params))

    def commit_with_next_write(self, table: Table, row: Params, id_column: str | None) -> None:
        _refuse_after_final(self._final)
        self._final = _FinalRow(table, row, id_column)

    async def append_at_commit(self, table: Table, rows: Sequence[Params]) -> None:
        await self.write_at_commit(_insert_into(table), rows)

    async def insert_many(
        self, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
    ) -> list[int]:
        _refuse_after_final(self._final)
        if not rows:
            return []
        statement = _insert_returning_ids(table)
        params = [dict(zip(columns, row, strict=True)) for row in rows]
        result = await self._finished((await self._connected()).execute(statement, params))
        return [row[0] for row in result.all()]

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        nested = (await self._connected()).begin_nested()
        await self._finished(nested.start())
        attached_before = self._final is not None and self._final.attached
        try:
            yield
        except BaseException:
            await self._finished(nested.rollback())
            self._final = _dropped_if_undone(self._final, attached_before)
            raise
        await self._finished(nested.commit())

    async def commit(self) -> None:
        if self._connection is not None:
            await self._finished(self._connection.commit())
            self._final_kept_by_commit()

    async def rollback(self) -> None:
        self._final_dropped_by_rollback()
        if self._connection is not None:
            await self._finished(self._connection.rollback())

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._finished(connection.close())


async def _to_the_end(call: Awaitable[_T]) -> _T:
    """Await ``call`` to its end; a cancellation that arrives meanwhile is raised after it."""
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task])
        raise


class _CopyInto:
    """``COPY table (columns) FROM STDIN``, with the columns' bind processors in order."""

    __slots__ = ("columns", "processors", "sql")

    def __init__(self, table: Table, columns: tuple[str, ...], dialect: Dialect) -> None:
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(name) for name in columns)
        self.sql = f"COPY {quote(table.name)} ({names}) FROM STDIN"
        self.columns = columns
        self.processors = [table.c[name].type.bind_processor(dialect) for name in columns]

    def with_rows(self, rows: Sequence[Params]) -> _Copy:
        converted = []
        for row in rows:
            values = []
            for name, process in zip(self.columns, self.processors, strict=True):
                value = row[name]
                values.append(value if process is None else process(value))
            converted.append(tuple(values))
        return _Copy(self.sql, converted)


class _Copy:
    __slots__ = ("rows", "sql")

    def __init__(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        self.sql = sql
        self.rows = rows


_Deferred = tuple[_Compiled, list[dict[str, Any]]] | _Copy
_COPIES: dict[tuple[Table, tuple[str, ...]], _CopyInto] = {}


_COPY_ROWS_PER_WRITE = 1000
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_text(value: Any) -> str:
    """``value`` in COPY's text format: NULL is \\N; backslash, tab, newline and carriage
    return are escaped. (Values are text, whole numbers, booleans or aware datetimes.)"""
    kind = value.__class__
    if kind is str:
        text: str = value
        return text.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(text) else text
    if value is None:
        return "\\N"
    if kind is bool:
        return "t" if value else "f"
    if isinstance(value, datetime):
        return _timestamp(value)
    return str(value)


@functools.lru_cache(maxsize=64)
def _timestamp(value: datetime) -> str:
    """(Cached: a bulk insert gives every row the same times.)"""
    if value.tzinfo is None:
        raise ValueError("naive datetime")  # as DateTimeUTC refuses them
    return value.isoformat()


# Ids for a bulk insert, drawn from the table's own sequence (a serial "id" column).
_NEXT_IDS = "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)"


@functools.cache
def _insert_returning_ids(table: Table) -> Insert:
    return insert(table).returning(table.c.id, sort_by_parameter_order=True)


@functools.cache
def _insert_into(table: Table) -> Insert:
    """One statement object per table: compiled statements are cached by their object."""
    return insert(table)


def _copy_into(table: Table, columns: tuple[str, ...], dialect: Dialect) -> _CopyInto:
    key = (table, columns)
    if (copy := _COPIES.get(key)) is None:
        if len(_COPIES) >= _COMPILED_MAX:
            _COPIES.clear()
        copy = _COPIES[key] = _CopyInto(table, columns, dialect)
    return copy


_savepoint_names = (f"unit_savepoint_{n}" for n in itertools.count(1))


class _FinalRow:
    """What ``commit_with_next_write`` waits to insert, and where it has got to."""

    __slots__ = ("attached", "committed", "id_column", "row", "table")

    def __init__(self, table: Table, row: Params, id_column: str | None) -> None:
        self.table = table
        self.row = row
        self.id_column = id_column
        self.attached = False  # went in with its write, in a transaction not yet committed
        self.committed = False

    def with_written_id(self, written: Any) -> dict[str, Any]:
        row = dict(self.row)
        if self.id_column is not None:
            row[self.id_column] = written[0]
        return row


_ROW_PREFIX = "recorded_"


def _refuse_after_final(final: _FinalRow | None) -> None:
    if final is not None and final.attached:
        raise RuntimeError("Nothing may be written after a unit's final write")


def _dropped_if_undone(final: _FinalRow | None, attached_before: bool) -> _FinalRow | None:
    """What is left of ``final`` once a savepoint is rolled back: nothing, if its row went
    in inside that savepoint (with its write, both undone)."""
    if final is not None and final.attached and not attached_before:
        return None
    return final


@functools.lru_cache(maxsize=_COMPILED_MAX)
def _with_row(
    statement: Executable,
    column_keys: tuple[str, ...],
    table: Table,
    row_columns: tuple[str, ...],
    id_column: str | None,
) -> Executable:
    """``statement`` and an INSERT of one row into ``table`` per row it returns, as one
    statement (PostgreSQL's data-modifying WITH): atomic even outside a transaction.

    ``WITH written AS (statement), recorded AS (INSERT INTO table SELECT ... FROM written)
    SELECT * FROM written``. The row's values are bound as ``recorded_<column>``;
    ``id_column`` takes the written row's first column instead.
    """
    if isinstance(statement, (Insert, Update)):
        # Inside WITH, an INSERT or UPDATE takes no columns from the parameters' keys, as
        # it does at the top level: name them.
        target = statement.table.c
        named = {
            key: bindparam(key, type_=target[key].type) for key in column_keys if key in target
        }
        if named:
            statement = statement.values(named)
    if not isinstance(statement, (Insert, Update, Delete, Select)):
        raise TypeError("Only INSERT, UPDATE, DELETE or SELECT can carry a row with them")
    written = statement.cte("written")
    first = next(iter(written.c), None)
    if first is None:
        raise TypeError("A final write must return the rows it changes (RETURNING)")
    values = [
        first if name == id_column else bindparam(_ROW_PREFIX + name, type_=table.c[name].type)
        for name in row_columns
    ]
    recorded = insert(table).from_select(list(row_columns), select(*values).select_from(written))
    return select(*written.c).add_cte(recorded.cte("recorded"))


class DriverTransaction(_FinalRowState):
    """A unit of work on one of psycopg's pooled connections (see the module's docstring)."""

    __slots__ = ("_deferred", "_dialect", "_driver", "_ended", "_pool", "_source")

    def __init__(self, pool: DriverPool, dialect: Dialect) -> None:
        self._pool = pool
        self._dialect = dialect
        self._driver: psycopg.AsyncConnection[Any] | None = None
        self._source: AsyncConnectionPool | None = None  # where _driver goes back
        # write_at_commit's and append_at_commit's statements, waiting for commit.
        self._deferred: list[_Deferred] = []
        self._final: _FinalRow | None = None
        self._ended = False  # a final write committed the unit by itself

    def _writable(self) -> None:
        if self._ended:
            raise RuntimeError("Nothing may be written after a unit's final write (committed)")
        _refuse_after_final(self._final)

    @property
    def dialect_name(self) -> str:
        return self._dialect.name

    async def _connected(self) -> psycopg.AsyncConnection[Any]:
        if self._driver is None:
            self._source, self._driver = await self._pool.checkout()
        return self._driver

    def _compiled(
        self, statement: Executable, column_keys: tuple[str, ...] = (), many: bool = False
    ) -> _Compiled:
        compiled = _compiled(statement, self._dialect, column_keys, many)
        if compiled is None:
            # Nothing the repositories run: an expanding IN, or a Python-side default.
            raise TypeError(
                "This statement needs SQLAlchemy at execution time; bind plain values "
                "(a list for = ANY(...), say) and give every column a value"
            )
        return compiled

    async def read(self, statement: Executable, params: Params | None = None) -> Rows:
        compiled = self._compiled(statement)
        return await self._run(await self._connected(), compiled, params)

    async def write(
        self, statement: Executable, params: Params | Sequence[Params] | None = None
    ) -> Rows:
        self._writable()
        driver = await self._connected()
        final = self._final  # (not yet attached: _writable refuses that)
        if final is not None and (params is None or isinstance(params, Mapping)):
            return await self._final_write(driver, final, statement, params or {})
        if params is None or isinstance(params, Mapping):
            compiled = self._compiled(statement, tuple(params or ()))
            return await self._run(driver, compiled, params, begin=True)
        if params:
            compiled = self._compiled(statement, tuple(params[0]), many=True)
            await self._run_many(driver, [(compiled, [compiled.values(p) for p in params])])
        return _NO_ROWS

    async def _final_write(
        self,
        driver: psycopg.AsyncConnection[Any],
        final: _FinalRow,
        statement: Executable,
        params: Params,
    ) -> Rows:
        """``statement`` with ``final``'s row in one statement. Outside a transaction, with
        nothing else waiting for the commit, that statement commits the unit by itself: a
        create or an update with its audit event is one round trip."""
        combined = _with_row(
            statement, tuple(params), final.table, tuple(final.row), final.id_column
        )
        compiled = self._compiled(combined)
        values = dict(params)
        for name, value in final.row.items():
            if name != final.id_column:
                values[_ROW_PREFIX + name] = value
        alone = not self._deferred and driver.info.transaction_status == IDLE
        try:
            rows = await self._run(driver, compiled, values, begin=not alone)
        except BaseException:
            self._final = None  # a failed write keeps no event
            raise
        if rows.first() is None:
            self._final = None  # nothing written, so nothing recorded: the unit goes on
        elif alone:
            final.committed = self._ended = True
        else:
            final.attached = True
        return rows

    def commit_with_next_write(self, table: Table, row: Params, id_column: str | None) -> None:
        self._writable()
        self._final = _FinalRow(table, row, id_column)

    async def write_at_commit(self, statement: Executable, params: Sequence[Params]) -> None:
        self._writable()
        if params:
            compiled = self._compiled(statement, tuple(params[0]), many=True)
            self._deferred.append((compiled, [compiled.values(p) for p in params]))

    async def append_at_commit(self, table: Table, rows: Sequence[Params]) -> None:
        self._writable()
        if len(rows) == 1:  # travels with COMMIT
            await self.write_at_commit(_insert_into(table), rows)
        elif rows:
            # COPY cost a quarter of the client's CPU per row and half of PostgreSQL's,
            # against a prepared INSERT per row (250-row batches of audit events).
            copy = _copy_into(table, tuple(rows[0]), self._dialect)
            self._deferred.append(copy.with_rows(rows))

    async def insert_many(
        self, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
    ) -> list[int]:
        self._writable()
        if not rows:
            return []
        driver = await self._connected()
        await self._begin(driver)
        quote = self._dialect.identifier_preparer.quote
        names = ", ".join(quote(name) for name in ("id", *columns))
        copy_sql = f"COPY {quote(table.name)} ({names}) FROM STDIN"
        sql = _NEXT_IDS
        try:
            async with driver.cursor() as cursor:
                await cursor.execute(sql, (table.name, len(rows)))
                ids: list[int] = [row[0] for row in await cursor.fetchall()]
                sql = copy_sql
                async with cursor.copy(copy_sql) as copy:
                    # COPY's text format built here: a third of write_row's CPU per row.
                    for start in range(0, len(rows), _COPY_ROWS_PER_WRITE):
                        lines = [
                            "\t".join([str(row_id), *map(_copy_text, row)])
                            for row_id, row in zip(
                                ids[start : start + _COPY_ROWS_PER_WRITE],
                                rows[start : start + _COPY_ROWS_PER_WRITE],
                                strict=True,
                            )
                        ]
                        lines.append("")
                        await copy.write("\n".join(lines).encode())
        except psycopg.Error as error:
            raise self._translated(error, sql) from error
        return ids

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        self._writable()
        driver = await self._connected()
        await self._begin(driver)
        name = next(_savepoint_names)
        await self._command(driver, f"SAVEPOINT {name}")
        attached_before = self._final is not None and self._final.attached
        try:
            yield
        except BaseException:
            await self._command(driver, f"ROLLBACK TO SAVEPOINT {name}")
            self._final = _dropped_if_undone(self._final, attached_before)
            raise
        await self._command(driver, f"RELEASE SAVEPOINT {name}")

    async def commit(self) -> None:
        deferred, self._deferred = self._deferred, []
        driver = self._driver
        # (Outside a transaction there is nothing to commit: reads, or a final write that
        # committed itself.)
        if deferred or (driver is not None and driver.info.transaction_status != IDLE):
            await self._run_many(await self._connected(), deferred, commit=True)
            self._final_kept_by_commit()

    async def rollback(self) -> None:
        self._deferred = []
        self._final_dropped_by_rollback()
        if self._driver is not None:
            try:
                await self._driver.rollback()
            except psycopg.Error as error:
                raise self._translated(error, "ROLLBACK") from error

    async def close(self) -> None:
        driver, self._driver = self._driver, None
        source, self._source = self._source, None
        self._deferred = []
        if driver is None or source is None:
            return
        if not driver.closed and driver.info.transaction_status != TransactionStatus.IDLE:
            try:
                await driver.rollback()
            except psycopg.Error:
                await driver.close()  # the pool replaces a closed connection
        await source.putconn(driver)

    async def _begin(self, driver: psycopg.AsyncConnection[Any]) -> None:
        if driver.info.transaction_status == TransactionStatus.IDLE:
            await self._command(driver, "BEGIN")

    async def _command(self, driver: psycopg.AsyncConnection[Any], sql: str) -> None:
        try:
            await driver.execute(sql.encode())
        except psycopg.Error as error:
            raise self._translated(error, sql) from error

    async def _run(
        self,
        driver: psycopg.AsyncConnection[Any],
        compiled: _Compiled,
        params: Params | None,
        *,
        begin: bool = False,
    ) -> _Rows:
        values = compiled.values(params)
        try:
            if begin and driver.info.transaction_status == TransactionStatus.IDLE:
                # BEGIN and the first write in one message (see the module's docstring).
                cursor: psycopg.AsyncCursor[Any] = psycopg.AsyncClientCursor(driver)
                await cursor.execute(f"BEGIN; {compiled.sql}", values)
                cursor.nextset()
            else:
                cursor = driver.cursor()
                # Rows in PostgreSQL's binary format: an integer or a time is copied out
                # rather than parsed from text (a page of 100 doctors: 8 % fewer instructions,
                # callgrind). The values are the same, time zones included. (The simple
                # protocol above has no binary results.)
                await cursor.execute(compiled.sql, values, binary=True)
            # (Not cursor.description, which builds a Column object per column.)
            returned = cursor.pgresult is not None and cursor.pgresult.status == TUPLES_OK
            rows = await cursor.fetchall() if returned else []
            await cursor.close()
        except psycopg.Error as error:
            raise self._translated(error, compiled.sql) from error
        return _Rows(rows)

    async def _run_many(
        self,
        driver: psycopg.AsyncConnection[Any],
        statements: list[_Deferred],
        *,
        commit: bool = False,
    ) -> None:
        """Each statement once per set of values (in the transaction), then COMMIT if asked.

        With the commit, statements of one set of values go in COMMIT's message (see the
        module's docstring); bigger batches run first, prepared, as one executemany each.
        """
        # The message being built, and its statements as written: an error names those,
        # since the message itself carries quoted-in values, which may be patient data.
        together: list[str] = []
        named: list[str] = []
        sql = ""
        client = psycopg.AsyncClientCursor(driver)

        async def send() -> None:
            nonlocal sql
            sql = "; ".join(named)
            await client.execute("; ".join(together))
            together.clear()
            named.clear()

        try:
            if statements and driver.info.transaction_status == TransactionStatus.IDLE:
                together.append("BEGIN")
                named.append("BEGIN")
            for item in statements:
                template = item.sql if isinstance(item, _Copy) else item[0].sql
                if commit and not isinstance(item, _Copy) and len(item[1]) == 1:
                    together.append(client.mogrify(template, item[1][0]))
                    named.append(template)
                    continue
                if together:
                    await send()
                sql = template
                async with driver.cursor() as cursor:
                    if isinstance(item, _Copy):
                        async with cursor.copy(template) as copy:
                            for row in item.rows:
                                await copy.write_row(row)
                    else:
                        await cursor.executemany(template, item[1])
            if commit:
                together.append("COMMIT")
                named.append("COMMIT")
            if together:
                await send()
            await client.close()
        except psycopg.Error as error:
            raise self._translated(error, sql) from error

    def _translated(self, error: psycopg.Error, sql: str) -> StatementError | Unavailable:
        """``error`` as SQLAlchemy raises it, without the parameters (patient data); a lost
        connection as Unavailable. (A lost connection is closed, so the pool replaces it.)

        A statement ended by the session's ``statement_timeout`` or ``lock_timeout`` is
        Unavailable too, worth trying again in a second: its connection is sound, and goes
        back to the pool once ``close`` has rolled back what the unit began."""
        if self._driver is not None and self._driver.broken:
            self._pool.lost()
            return Unavailable("The database connection was lost")
        self._pool.failed(error)
        if isinstance(error, psycopg.errors.LockNotAvailable):
            return Unavailable(
                f"A statement waited past lock_timeout ({self._pool.lock_timeout_ms} ms)"
                " for a lock",
                retry_after=1,
            )
        if isinstance(error, psycopg.errors.QueryCanceled):
            return Unavailable(
                f"A statement ran past statement_timeout ({self._pool.statement_timeout_ms} ms)",
                retry_after=1,
            )
        return DBAPIError.instance(sql, None, error, psycopg.Error, hide_parameters=True)
