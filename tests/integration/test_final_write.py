"""``UnitOfWork.commit_with_next_write``: a change and its audit event, kept together.

The contract holds on every adapter (in memory, SQLite, PostgreSQL); on PostgreSQL a final
write outside a transaction is also one statement that commits by itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select, text, update

from healthcare.adapters.persistence.memory import MemoryStore, MemoryUnitOfWork
from healthcare.adapters.persistence.sqlalchemy import SqlAlchemyUnitOfWork
from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.adapters.persistence.sqlalchemy.tables import audit_event, patient
from healthcare.adapters.persistence.sqlalchemy.transaction import DriverTransaction
from healthcare.application.paging import PageRequest
from healthcare.application.ports import UnitOfWork
from healthcare.domain.audit import AuditAction, AuditEvent, AuditOutcome, AuditQuery
from healthcare.domain.audit import ResourceType as R
from healthcare.domain.entities import DoctorData, NewUser, User
from healthcare.domain.errors import Conflict, NotFound
from tests.integration.test_repositories import patient_data, unique

UowFactory = Callable[[], UnitOfWork]


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def where(request: pytest.FixtureRequest) -> str:
    """``memory``, or a database's URL (its session fixture runs outside the event loop)."""
    if request.param == "memory":
        return "memory"
    url: str = request.getfixturevalue(
        "sqlite_url" if request.param == "sqlite" else "postgres_url"
    )
    return url


@pytest.fixture
async def new_uow(where: str) -> AsyncIterator[UowFactory]:
    if where == "memory":
        store = MemoryStore()
        yield lambda: MemoryUnitOfWork(store)
        return
    database = Database(where, pool_size=2)
    yield lambda: SqlAlchemyUnitOfWork(database)
    await database.dispose()


def success(action: AuditAction, user: User, kind: R, resource_id: int | None) -> AuditEvent:
    return AuditEvent(
        datetime.now(UTC), action, AuditOutcome.SUCCESS, user.id, kind, resource_id, None, None
    )


async def a_user(new_uow: UowFactory) -> User:
    name = unique()
    async with new_uow() as uow:
        user = await uow.users.add(NewUser(name, f"{name}@example.org", "hash"))
        await uow.commit()
    return user


async def events_of(new_uow: UowFactory, user: User) -> list[tuple[AuditAction, int | None]]:
    async with new_uow() as uow:
        page = await uow.audit.list(AuditQuery(user_id=user.id), PageRequest())
    return [(event.action, event.resource_id) for event in reversed(page.items)]


async def test_the_event_is_kept_with_the_write_and_names_the_row_it_created(
    new_uow: UowFactory,
) -> None:
    owner = await a_user(new_uow)
    uow = new_uow()
    async with uow:
        uow.commit_with_next_write(success(AuditAction.PATIENT_CREATE, owner, R.PATIENT, None))
        created = await uow.patients.add(owner.id, patient_data())
        await uow.commit()
    assert uow.final_event_committed
    assert await events_of(new_uow, owner) == [(AuditAction.PATIENT_CREATE, created.id)]


async def test_an_event_that_names_its_resource_keeps_that_name(new_uow: UowFactory) -> None:
    owner = await a_user(new_uow)
    async with new_uow() as uow:
        created = await uow.patients.add(owner.id, patient_data())
        await uow.commit()
    async with new_uow() as uow:
        uow.commit_with_next_write(
            success(AuditAction.PATIENT_UPDATE, owner, R.PATIENT, created.id)
        )
        changed = await uow.patients.update(owner.id, created.id, patient_data("Ada King"))
        await uow.commit()
    assert changed is not None and changed.name == "Ada King"
    assert await events_of(new_uow, owner) == [(AuditAction.PATIENT_UPDATE, created.id)]


async def test_a_write_that_changes_nothing_drops_the_event_and_the_unit_goes_on(
    new_uow: UowFactory,
) -> None:
    owner = await a_user(new_uow)
    uow = new_uow()
    async with uow:
        uow.commit_with_next_write(success(AuditAction.PATIENT_UPDATE, owner, R.PATIENT, 1))
        assert await uow.patients.update(owner.id, 10**12, patient_data()) is None
        # The event was dropped with the write that changed nothing: this one goes alone.
        doctor = await uow.doctors.add(owner.id, DoctorData("Dr Later", "Surgery"))
        await uow.commit()
    assert not uow.final_event_committed
    assert await events_of(new_uow, owner) == []
    async with new_uow() as uow:
        assert await uow.doctors.get(doctor.id) == doctor


async def test_a_refused_final_write_keeps_no_event(new_uow: UowFactory) -> None:
    owner, stranger = await a_user(new_uow), await a_user(new_uow)
    async with new_uow() as uow:
        mine = await uow.patients.add(owner.id, patient_data())
        doctor = await uow.doctors.add(owner.id, DoctorData("Dr Pair", "Surgery"))
        await uow.mappings.add(owner.id, mine.id, doctor.id)
        await uow.commit()
    attempts = [(stranger, mine.id, doctor.id, NotFound), (owner, mine.id, doctor.id, Conflict)]
    for who, patient_id, doctor_id, refusal in attempts:
        uow = new_uow()
        async with uow:
            uow.commit_with_next_write(success(AuditAction.MAPPING_CREATE, who, R.MAPPING, None))
            with pytest.raises(refusal):
                await uow.mappings.add(who.id, patient_id, doctor_id)
        assert not uow.final_event_committed
    assert await events_of(new_uow, stranger) == []
    assert await events_of(new_uow, owner) == []


async def test_a_refused_final_write_drops_the_event_and_the_unit_goes_on(
    new_uow: UowFactory,
) -> None:
    owner, stranger = await a_user(new_uow), await a_user(new_uow)
    async with new_uow() as uow:
        theirs = await uow.patients.add(owner.id, patient_data())
        doctor = await uow.doctors.add(owner.id, DoctorData("Dr Refused", "Surgery"))
        await uow.commit()
    uow = new_uow()
    async with uow:
        uow.commit_with_next_write(success(AuditAction.MAPPING_CREATE, stranger, R.MAPPING, None))
        with pytest.raises(NotFound):
            await uow.mappings.add(stranger.id, theirs.id, doctor.id)
        mine = await uow.patients.add(stranger.id, patient_data("Kept without the event"))
        await uow.commit()
    assert not uow.final_event_committed
    assert await events_of(new_uow, stranger) == []
    async with new_uow() as reader:
        assert await reader.patients.get(stranger.id, mine.id) == mine


async def test_nothing_may_be_written_after_the_final_write(new_uow: UowFactory) -> None:
    owner = await a_user(new_uow)
    uow = new_uow()
    async with uow:
        uow.commit_with_next_write(success(AuditAction.PATIENT_CREATE, owner, R.PATIENT, None))
        await uow.patients.add(owner.id, patient_data())
        with pytest.raises(RuntimeError, match="written after"):
            await uow.doctors.add(owner.id, DoctorData("Dr Too Late", "Surgery"))
        with pytest.raises(RuntimeError, match="written after"):
            uow.commit_with_next_write(success(AuditAction.PATIENT_CREATE, owner, R.PATIENT, None))


async def test_a_unit_left_without_commit_keeps_both_or_neither(new_uow: UowFactory) -> None:
    # An adapter may commit with the final write itself (PostgreSQL does, outside a
    # transaction); either way the change and its event share one fate.
    owner = await a_user(new_uow)
    uow = new_uow()
    async with uow:
        uow.commit_with_next_write(success(AuditAction.PATIENT_CREATE, owner, R.PATIENT, None))
        created = await uow.patients.add(owner.id, patient_data())
    async with new_uow() as reader:
        kept = await reader.patients.get(owner.id, created.id) is not None
    assert kept == uow.final_event_committed
    assert await events_of(new_uow, owner) == (
        [(AuditAction.PATIENT_CREATE, created.id)] if kept else []
    )


# PostgreSQL: what the final write costs --------------------------------------------------

_SET_NAME = (
    update(patient)
    .where(patient.c.id == bindparam("b_id"))
    .values(name=bindparam("name"), updated_at=bindparam("b_now"))
    .returning(patient.c.id)
)
NOW = datetime.now(UTC)
_EVENT_ROW = {
    "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
    "action": "patient.update",
    "outcome": "success",
    "user_id": None,
    "resource_type": "patient",
    "resource_id": None,
    "client": None,
    "request_id": None,
}


@pytest.fixture
async def postgres(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url, pool_size=2)
    yield database
    await database.dispose()


async def a_patient_id(database: Database) -> int:
    async with SqlAlchemyUnitOfWork(database) as uow:
        owner = await uow.users.add(NewUser(unique(), f"{unique()}@example.org", "hash"))
        created = await uow.patients.add(owner.id, patient_data())
        await uow.commit()
    return created.id


def event_row(request_id: str) -> dict[str, object]:
    return {**_EVENT_ROW, "request_id": request_id}


async def committed_events(database: Database, request_id: str) -> int:
    where = audit_event.c.request_id == request_id
    async with database.engine.connect() as other:
        found = await other.execute(select(audit_event.c.id).where(where))
        return len(found.all())


@pytest.mark.postgres
async def test_outside_a_transaction_the_final_write_commits_by_itself(
    postgres: Database,
) -> None:
    patient_id = await a_patient_id(postgres)
    db = postgres.transaction()
    assert isinstance(db, DriverTransaction)
    try:
        request_id = unique("final-write")
        db.commit_with_next_write(audit_event, event_row(request_id), "resource_id")
        await db.write(_SET_NAME, {"b_id": patient_id, "name": "Committed at once", "b_now": NOW})
        # Seen from another connection before any COMMIT: one statement, in autocommit.
        assert await committed_events(postgres, request_id) == 1
        assert db.final_row_committed
        with pytest.raises(RuntimeError, match="written after"):
            await db.write(_SET_NAME, {"b_id": patient_id, "name": "Too late", "b_now": NOW})
        await db.commit()  # nothing left to do
    finally:
        await db.close()


@pytest.mark.postgres
async def test_inside_a_transaction_the_final_write_waits_for_the_commit(
    postgres: Database,
) -> None:
    patient_id = await a_patient_id(postgres)
    for commit in (False, True):
        db = postgres.transaction()
        try:
            await db.write(_SET_NAME, {"b_id": patient_id, "name": "First", "b_now": NOW})  # begins
            request_id = unique("final-write")
            db.commit_with_next_write(audit_event, event_row(request_id), "resource_id")
            await db.write(_SET_NAME, {"b_id": patient_id, "name": "Second", "b_now": NOW})
            assert await committed_events(postgres, request_id) == 0
            if commit:
                await db.commit()
            assert db.final_row_committed == commit
        finally:
            await db.close()
        assert await committed_events(postgres, request_id) == (1 if commit else 0)


@pytest.mark.postgres
async def test_a_final_write_must_say_what_it_wrote(postgres: Database) -> None:
    db = postgres.transaction()
    try:
        db.commit_with_next_write(audit_event, _EVENT_ROW, "resource_id")
        no_returning = update(patient).where(text("false")).values(name="x", updated_at=NOW)
        with pytest.raises(TypeError, match="RETURNING"):
            await db.write(no_returning, {})
    finally:
        await db.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url_of(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(
        "sqlite_url" if request.param == "sqlite" else "postgres_url"
    )
    return url


async def test_a_final_write_undone_with_its_savepoint_keeps_no_row(
    database_url_of: str,
) -> None:
    database = Database(database_url_of, pool_size=1)
    request_id = unique("savepoint")
    try:
        patient_id = await a_patient_id(database)
        db = database.transaction()
        try:
            await db.write(_SET_NAME, {"b_id": patient_id, "name": "Before", "b_now": NOW})
            db.commit_with_next_write(audit_event, event_row(request_id), "resource_id")

            async def undone() -> None:
                async with db.savepoint():
                    await db.write(_SET_NAME, {"b_id": patient_id, "name": "Undone", "b_now": NOW})
                    raise LookupError("undo the savepoint")

            with pytest.raises(LookupError):
                await undone()
            await db.commit()
            assert not db.final_row_committed
        finally:
            await db.close()
        assert await committed_events(database, request_id) == 0
    finally:
        await database.dispose()
