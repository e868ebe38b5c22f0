"""When the unit of work's transaction begins: DriverTransaction (PostgreSQL) against
EngineTransaction.

``transaction_timestamp()`` (``now()``) tells statements apart: in one transaction it does
not move; two statements in autocommit mode are two transactions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, literal, select, text
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from healthcare.adapters.persistence.sqlalchemy import create_engine, transaction
from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.adapters.persistence.sqlalchemy.tables import audit_event
from healthcare.adapters.persistence.sqlalchemy.transaction import (
    DriverTransaction,
    EngineTransaction,
    Transaction,
)
from healthcare.domain.errors import Unavailable

NOW = text("SELECT transaction_timestamp()")
pytestmark = pytest.mark.postgres


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[Database]:
    # One connection, so every transaction gets the one the previous gave back.
    database = Database(postgres_url, pool_size=1)
    yield database
    await database.dispose()


def driver(database: Database) -> DriverTransaction:
    transaction = database.transaction()
    assert isinstance(transaction, DriverTransaction)
    return transaction


async def stamp(read: bool, db: Transaction) -> datetime:
    await asyncio.sleep(0.01)
    result = await (db.read(NOW) if read else db.write(NOW))
    value: datetime = result.scalar_one()
    return value


async def test_reads_before_the_first_write_run_outside_a_transaction(
    database: Database,
) -> None:
    db = driver(database)
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


async def test_a_connection_reads_outside_a_transaction_after_a_writing_unit(
    database: Database,
) -> None:
    writer = driver(database)
    await stamp(False, writer)
    await writer.close()  # not committed: rolled back
    reader = driver(database)
    try:
        assert await stamp(True, reader) != await stamp(True, reader)
    finally:
        await reader.close()


async def test_uncommitted_writes_are_rolled_back_on_close(
    database: Database,
) -> None:
    async with database.engine.begin() as setup:
        await setup.execute(text("CREATE TABLE IF NOT EXISTS lazy_probe (n int)"))
    db = driver(database)
    await db.read(text("SELECT count(*) FROM lazy_probe"))
    await db.write(text("INSERT INTO lazy_probe VALUES (1)"))
    await db.write(text("INSERT INTO lazy_probe VALUES (2)"))
    assert (await db.read(text("SELECT count(*) FROM lazy_probe"))).scalar_one() == 2
    await db.close()
    async with database.engine.begin() as check:
        assert (await check.execute(text("SELECT count(*) FROM lazy_probe"))).scalar_one() == 0
        await check.execute(text("DROP TABLE lazy_probe"))


async def test_on_the_engine_the_whole_unit_is_one_transaction(
    postgres_url: str,
) -> None:
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0)
    db = EngineTransaction(engine)
    try:
        assert await stamp(True, db) == await stamp(True, db) == await stamp(False, db)
    finally:
        await db.close()
        await engine.dispose()


async def test_reads_outside_a_transaction_raise_sqlalchemy_errors(
    database: Database,
) -> None:
    db = driver(database)
    try:
        with pytest.raises(DBAPIError) as raised:
            await db.read(text("SELECT 1 / 0"))
        assert isinstance(raised.value, DataError)
        assert (await db.read(text("SELECT 2"))).scalar_one() == 2  # still usable
    finally:
        await db.close()


async def test_a_lost_connection_is_unavailable_and_not_returned_to_the_pool(
    database: Database, postgres_url: str
) -> None:
    victim = driver(database)
    pid = (await victim.read(text("SELECT pg_backend_pid()"))).scalar_one()
    killer = create_engine(postgres_url)
    async with killer.begin() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await killer.dispose()
    with pytest.raises(Unavailable, match="lost"):
        await victim.read(text("SELECT 1"))
    await victim.close()
    # The pool's only slot, reconnected within the short wait of a database known to be away.
    fresh = driver(database)
    try:
        assert (await fresh.read(text("SELECT pg_backend_pid()"))).scalar_one() != pid
    finally:
        await fresh.close()


async def test_statements_binding_their_own_values_read_alike(
    database: Database, postgres_url: str
) -> None:
    statement = select(literal(41) + bindparam("n", type_=Integer), literal("x"))
    outside = driver(database)
    plain = create_engine(postgres_url, pool_size=1, max_overflow=0)
    inside = EngineTransaction(plain)
    try:
        expected = (await inside.read(statement, {"n": 1})).one()
        assert tuple((await outside.read(statement, {"n": 1})).one()) == tuple(expected)
        assert tuple(expected) == (42, "x")
    finally:
        await outside.close()
        await inside.close()
        await plain.dispose()


async def test_statements_for_the_commit_wait_for_it_and_share_its_transaction(
    database: Database,
) -> None:
    async with database.engine.begin() as setup:
        await setup.execute(
            text("CREATE TABLE IF NOT EXISTS deferred_probe (n int, at timestamptz)")
        )
        await setup.execute(text("TRUNCATE deferred_probe"))
    probe = text("INSERT INTO deferred_probe VALUES (:n, transaction_timestamp())")
    count = text("SELECT count(*) FROM deferred_probe")
    db = driver(database)
    try:
        written = await stamp(False, db)
        await db.write_at_commit(probe, [{"n": 1}, {"n": 2}])
        assert (await db.read(count)).scalar_one() == 0  # not sent before the commit
        await db.commit()
        stamps = (await db.read(text("SELECT DISTINCT at FROM deferred_probe"))).all()
        assert [row[0] for row in stamps] == [written]  # in the transaction of the write
        # A unit that never commits never sends them.
        await db.write_at_commit(probe, [{"n": 3}])
        await db.rollback()
        await db.commit()
        assert (await db.read(count)).scalar_one() == 2
    finally:
        await db.close()
        async with database.engine.begin() as cleanup:
            await cleanup.execute(text("DROP TABLE deferred_probe"))


async def test_a_failing_statement_for_the_commit_fails_the_commit_and_keeps_nothing(
    database: Database,
) -> None:
    async with database.engine.begin() as setup:
        await setup.execute(text("CREATE TABLE IF NOT EXISTS strict_probe (n int PRIMARY KEY)"))
        await setup.execute(text("TRUNCATE strict_probe"))
    insert = text("INSERT INTO strict_probe VALUES (:n)")
    db = driver(database)
    try:
        await db.write(insert, {"n": 1})
        await db.write_at_commit(insert, [{"n": 1}])  # a duplicate key
        with pytest.raises(IntegrityError) as raised:
            await db.commit()
        # The error names the statement as written, not the message with its values in.
        assert raised.value.statement == "INSERT INTO strict_probe VALUES (%(n)s); COMMIT"
    finally:
        await db.close()
    async with database.engine.begin() as check:
        assert (await check.execute(text("SELECT count(*) FROM strict_probe"))).scalar_one() == 0
        await check.execute(text("DROP TABLE strict_probe"))


async def test_a_statement_only_sqlalchemy_could_run_is_refused(
    database: Database,
) -> None:
    # An expanding IN is rendered at execution time; the repositories bind plain values.
    expanding = text("SELECT 1 WHERE 1 IN :ns").bindparams(bindparam("ns", expanding=True))
    db = driver(database)
    try:
        with pytest.raises(TypeError, match="needs SQLAlchemy"):
            await db.read(expanding, {"ns": [1, 2]})
        with pytest.raises(TypeError, match="needs SQLAlchemy"):
            await db.write(expanding, {"ns": [1, 2]})
    finally:
        await db.close()


async def test_naive_times_are_refused_on_the_direct_path_too(
    database: Database,
) -> None:
    # The column types' bind processors run on the direct path too (DateTimeUTC's).
    statement = select(bindparam("at", type_=DateTimeUTC(timezone=True)))
    db = driver(database)
    try:
        with pytest.raises(TypeError, match="tzinfo is required"):
            await db.read(statement, {"at": datetime(2026, 1, 1)})
        aware = datetime(2026, 1, 1, tzinfo=UTC)
        assert (await db.read(statement, {"at": aware})).scalar_one() == aware
    finally:
        await db.close()


async def test_a_unit_that_only_writes_at_commit_still_writes(database: Database) -> None:
    async with database.engine.begin() as setup:
        await setup.execute(text("CREATE TABLE IF NOT EXISTS lone_probe (n int)"))
    db = driver(database)
    try:
        await db.write_at_commit(text("INSERT INTO lone_probe VALUES (:n)"), [{"n": 7}])
        await db.commit()  # the first statement of the unit
    finally:
        await db.close()
    async with database.engine.begin() as check:
        assert (await check.execute(text("SELECT n FROM lone_probe"))).scalar_one() == 7
        await check.execute(text("DROP TABLE lone_probe"))


TRICKY = "O'Brien \\\\ 100% %s %(n)s '; DROP TABLE quoted_probe; -- \u00e9\u6f22"


async def test_values_bound_on_our_side_arrive_exactly(database: Database) -> None:
    # The first write travels with BEGIN and a lone insert with COMMIT, their values quoted
    # by psycopg on our side: quotes, backslashes, percent signs and non-ASCII text must
    # arrive as they were, as data.
    async with database.engine.begin() as setup:
        await setup.execute(text("CREATE TABLE IF NOT EXISTS quoted_probe (n int, s text)"))
    insert = text("INSERT INTO quoted_probe VALUES (:n, :s) RETURNING s")
    db = driver(database)
    try:
        first = (await db.write(insert, {"n": 1, "s": TRICKY})).scalar_one()
        await db.write_at_commit(
            text("INSERT INTO quoted_probe VALUES (:n, :s)"), [{"n": 2, "s": TRICKY}]
        )
        await db.commit()
        stored = (await db.read(text("SELECT s FROM quoted_probe ORDER BY n"))).all()
    finally:
        await db.close()
        async with database.engine.begin() as cleanup:
            await cleanup.execute(text("DROP TABLE quoted_probe"))
    assert first == TRICKY
    assert [row[0] for row in stored] == [TRICKY, TRICKY]


async def test_a_failing_first_write_leaves_its_transaction_to_be_rolled_back(
    database: Database,
) -> None:
    async with database.engine.begin() as setup:
        await setup.execute(text("CREATE TABLE IF NOT EXISTS unique_probe (n int PRIMARY KEY)"))
        await setup.execute(text("INSERT INTO unique_probe VALUES (1) ON CONFLICT DO NOTHING"))
    db = driver(database)
    try:
        with pytest.raises(IntegrityError):
            await db.write(text("INSERT INTO unique_probe VALUES (:n)"), {"n": 1})
    finally:
        await db.close()
    again = driver(database)  # the same pooled connection, usable and outside a transaction
    try:
        assert await stamp(True, again) != await stamp(True, again)
    finally:
        await again.close()
        async with database.engine.begin() as cleanup:
            await cleanup.execute(text("DROP TABLE unique_probe"))


async def test_rows_appended_at_commit_arrive_by_copy_exactly(database: Database) -> None:
    # Several rows go by COPY, their values through the columns' bind processors.
    rows = [
        {
            "occurred_at": datetime(2026, 1, 1, 12, tzinfo=UTC),
            "action": "patient.read",
            "outcome": "success",
            "user_id": n,
            "resource_type": "patient",
            "resource_id": n,
            "client": TRICKY[:64],
            "request_id": f"copy-probe-{n}",
        }
        for n in range(3)
    ]
    db = driver(database)
    try:
        await db.append_at_commit(audit_event, rows)
        probe = select(audit_event.c.user_id, audit_event.c.client, audit_event.c.occurred_at)
        probe = probe.where(audit_event.c.request_id.like("copy-probe-%"))
        assert (await db.read(probe)).all() == []  # not before the commit
        await db.commit()
        stored = sorted((await db.read(probe)).all())
    finally:
        await db.close()
    assert stored == [(n, TRICKY[:64], rows[0]["occurred_at"]) for n in range(3)]


async def test_a_lone_appended_row_reuses_its_compiled_statement(database: Database) -> None:
    # A statement is compiled once per object: building a new INSERT per event compiled
    # every audit insert anew (and cut the write benchmarks by a third).
    row = {
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
        "action": "patient.read",
        "outcome": "success",
        "request_id": "compile-probe",
    }
    db = driver(database)
    try:
        await db.append_at_commit(audit_event, [row])
        await db.commit()
        compiled = len(transaction._COMPILED)
        for _ in range(3):
            await db.append_at_commit(audit_event, [row])
            await db.commit()
        assert len(transaction._COMPILED) == compiled
    finally:
        await db.close()


async def test_prepared_statements_are_planned_once_not_per_execution(
    database: Database,
) -> None:
    # A page of an owner's rows: left to choose, PostgreSQL may plan it anew on every
    # execution (see pool.py); the pool's sessions keep the one generic plan.
    page = (
        select(audit_event.c.id)
        .where(audit_event.c.user_id == bindparam("owner"))
        .order_by(audit_event.c.id)
        .limit(bindparam("limit"))
    )
    db = driver(database)
    try:
        for owner in range(12):
            await db.read(page, {"owner": owner, "limit": 20})
        generic, custom = (
            await db.read(
                text(
                    "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                    " WHERE statement LIKE 'SELECT audit_event.id %'"
                )
            )
        ).one()
    finally:
        await db.close()
    assert custom == 0
    assert generic >= 6


async def test_a_unit_of_only_deferred_statements_is_one_transaction(
    database: Database,
) -> None:
    """With nothing written before the commit, the deferred statements still begin a
    transaction of their own: rows sent by COPY ahead of COMMIT's message are undone when a
    statement of that message fails. (Without the BEGIN the COPY would commit by itself in
    autocommit mode, and a failed unit would keep half its rows.)"""
    probe = Table("begin_probe", MetaData(), Column("n", Integer, primary_key=True))
    async with database.engine.begin() as setup:
        await setup.execute(text("CREATE TABLE IF NOT EXISTS begin_probe (n int PRIMARY KEY)"))
        await setup.execute(text("TRUNCATE begin_probe"))
    db = driver(database)
    try:
        await db.append_at_commit(probe, [{"n": 1}, {"n": 2}])  # by COPY, sent first
        await db.write_at_commit(text("INSERT INTO begin_probe VALUES (:n)"), [{"n": 1}])
        with pytest.raises(IntegrityError):
            await db.commit()
    finally:
        await db.close()
    async with database.engine.begin() as check:
        kept = (await check.execute(text("SELECT count(*) FROM begin_probe"))).scalar_one()
        await check.execute(text("DROP TABLE begin_probe"))
    assert kept == 0
