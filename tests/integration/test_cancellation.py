"""A unit of work cancelled half way (a client gone, a timeout, the service stopping) must
leave the database as it found it: no lock held, no connection lost."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.adapters.persistence.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from healthcare.domain.audit import AuditAction, AuditEvent, AuditOutcome

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
