"""Units of work that cannot finish: cancelled half way (a client gone, a timeout, the service
stopping), or facing a database that is locked or away. The first must leave the database as
it found it; the others are Unavailable (a 503), never a driver's error (a 500)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.adapters.persistence.sqlalchemy.pool import WAIT_WHILE_AWAY_SECONDS, DriverPool
from healthcare.adapters.persistence.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from healthcare.domain.audit import AuditAction, AuditEvent, AuditOutcome
from healthcare.domain.errors import Unavailable

EVENTS = [
    AuditEvent(
        datetime.now(UTC),
        AuditAction.PATIENT_READ,
        AuditOutcome.SUCCESS,
        None,
        None,
        None,
        None,
        "cancellation-test",
    )
] * 20


async def write(database: Database) -> None:
    async with SqlAlchemyUnitOfWork(database) as uow:
        await uow.audit.add(EVENTS)
        await uow.commit()


async def test_a_cancelled_unit_of_work_never_blocks_the_next_writer(database_url: str) -> None:
    # A short busy timeout: a lock left behind fails the next write in half a second. (On
    # SQLite, aiosqlite abandoned the connection of a cancelled call, lock and all.)
    database = Database(database_url, pool_size=2, busy_timeout_ms=500)
    try:
        for step in range(80):
            unit = asyncio.create_task(write(database))
            # Cancelled at a different point of the unit each time, or after it.
            await asyncio.sleep(step * 0.00005)
            unit.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await unit
            await write(database)
    finally:
        await database.dispose()


async def test_a_writer_that_outwaits_the_sqlite_busy_timeout_is_unavailable(
    sqlite_url: str,
) -> None:
    database = Database(sqlite_url, busy_timeout_ms=50)
    holder, waiter = database.transaction(), database.transaction()
    try:
        await holder.write(text("SELECT 1"))  # BEGIN IMMEDIATE: the write lock
        with pytest.raises(Unavailable, match="lock") as raised:
            await waiter.write(text("SELECT 1"))
        assert raised.value.retry_after == 1  # as PostgreSQL's lock_timeout
    finally:
        await holder.close()
        await waiter.close()
        await database.dispose()


async def test_checkouts_fail_fast_once_the_database_is_known_to_be_away() -> None:
    pool = DriverPool(
        "postgresql+psycopg://postgres@127.0.0.1:1/nowhere", size=1, timeout_seconds=0.5
    )
    try:
        with pytest.raises(Unavailable, match=re.escape("within 0.5 s")):
            await pool.checkout()
        with pytest.raises(Unavailable, match=re.escape(f"within {WAIT_WHILE_AWAY_SECONDS:g} s")):
            await pool.checkout()
    finally:
        await pool.close()
