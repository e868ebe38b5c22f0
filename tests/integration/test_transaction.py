"""When the unit of work's transaction begins, on PostgreSQL and SQLite.

``transaction_timestamp()`` (``now()``) tells statements apart: in one transaction it does
not move; two statements in autocommit mode are two transactions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import Integer, bindparam, literal, select, text
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from healthcare.adapters.persistence.sqlalchemy import create_engine
from healthcare.adapters.persistence.sqlalchemy.transaction import LazyTransaction

NOW = text("SELECT transaction_timestamp()")
pytestmark = pytest.mark.postgres


@pytest.fixture
async def autocommit_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    # One connection, so every LazyTransaction gets the one the previous returned.
    engine = create_engine(postgres_url, autocommit=True, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


async def stamp(read: bool, db: LazyTransaction) -> datetime:
    await asyncio.sleep(0.01)
    result = await (db.read(NOW) if read else db.write(NOW))
    value: datetime = result.scalar_one()
    return value


async def test_reads_before_the_first_write_run_outside_a_transaction(
    autocommit_engine: AsyncEngine,
) -> None:
    db = LazyTransaction(autocommit_engine)
    try:
        first, second = await stamp(True, db), await stamp(True, db)
        assert first != second
        written = await stamp(False, db)
        # From the first write on, everything is one transaction, reads included.
        assert written == await stamp(True, db) == await stamp(False, db)
        await db.commit()
        assert await stamp(True, db) != written  # a new transaction after the commit
    finally:
        await db.close()


async def test_a_connection_is_back_in_autocommit_mode_after_a_writing_unit(
    autocommit_engine: AsyncEngine,
) -> None:
    writer = LazyTransaction(autocommit_engine)
    await stamp(False, writer)
    await writer.close()  # not committed: rolled back
    reader = LazyTransaction(autocommit_engine)
    try:
        assert await stamp(True, reader) != await stamp(True, reader)
    finally:
        await reader.close()


async def test_uncommitted_writes_are_rolled_back_on_close(
    autocommit_engine: AsyncEngine,
) -> None:
    async with autocommit_engine.connect() as setup:
        await setup.execute(text("CREATE TABLE IF NOT EXISTS lazy_probe (n int)"))
    db = LazyTransaction(autocommit_engine)
    await db.read(text("SELECT count(*) FROM lazy_probe"))
    await db.write(text("INSERT INTO lazy_probe VALUES (1)"))
    await db.write(text("INSERT INTO lazy_probe VALUES (2)"))
    assert (await db.read(text("SELECT count(*) FROM lazy_probe"))).scalar_one() == 2
    await db.close()
    async with autocommit_engine.connect() as check:
        assert (await check.execute(text("SELECT count(*) FROM lazy_probe"))).scalar_one() == 0
        await check.execute(text("DROP TABLE lazy_probe"))


async def test_without_an_autocommit_engine_the_whole_unit_is_one_transaction(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    db = LazyTransaction(engine)
    try:
        assert await stamp(True, db) == await stamp(True, db) == await stamp(False, db)
    finally:
        await db.close()
        await engine.dispose()


async def test_reads_outside_a_transaction_raise_sqlalchemy_errors(
    autocommit_engine: AsyncEngine,
) -> None:
    db = LazyTransaction(autocommit_engine)
    try:
        with pytest.raises(DBAPIError) as raised:
            await db.read(text("SELECT 1 / 0"))
        assert isinstance(raised.value, DataError)
        assert (await db.read(text("SELECT 2"))).scalar_one() == 2  # still usable
    finally:
        await db.close()


async def test_a_lost_connection_is_not_returned_to_the_pool(
    autocommit_engine: AsyncEngine, postgres_url: str
) -> None:
    victim = LazyTransaction(autocommit_engine)
    pid = (await victim.read(text("SELECT pg_backend_pid()"))).scalar_one()
    killer = create_engine(postgres_url, autocommit=True)
    async with killer.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await killer.dispose()
    with pytest.raises(DBAPIError):
        await victim.read(text("SELECT 1"))
    await victim.close()
    fresh = LazyTransaction(autocommit_engine)  # the pool's only slot, reconnected
    try:
        assert (await fresh.read(text("SELECT pg_backend_pid()"))).scalar_one() != pid
    finally:
        await fresh.close()


async def test_statements_binding_their_own_values_read_alike(
    autocommit_engine: AsyncEngine, postgres_url: str
) -> None:
    statement = select(literal(41) + bindparam("n", type_=Integer), literal("x"))
    outside = LazyTransaction(autocommit_engine)
    plain = create_engine(postgres_url, pool_size=1, max_overflow=0)
    inside = LazyTransaction(plain)
    try:
        expected = (await inside.read(statement, {"n": 1})).one()
        assert tuple((await outside.read(statement, {"n": 1})).one()) == tuple(expected)
        assert tuple(expected) == (42, "x")
    finally:
        await outside.close()
        await inside.close()
        await plain.dispose()
