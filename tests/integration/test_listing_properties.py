"""Property: a filtered, ordered, paged walk returns exactly what Python's filter and sort give.

On every adapter (SQLite, PostgreSQL, memory): for random patients and doctors and a random
filter, ordering and page size, walking the pages from offset 0 yields the rows a plain
Python filter and sort of the same records yield, none missing and none twice, and every
page's total is the number of matches.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthcare.application.paging import PageRequest
from healthcare.domain.entities import Doctor, DoctorData, Gender, NewUser, Patient, PatientData
from healthcare.domain.listing import (
    DOCTOR_ORDERING,
    PATIENT_ORDERING,
    doctor_filter,
    patient_filter,
    search_key,
)
from tests.integration.conftest import UowFactory

# Names that make searching and ordering interesting: case, accents, shared fragments,
# LIKE's own wildcards.
NAMES = ["Ada", "ada", "Ádám", "Adele", "Édith", "edith", "Bo", "b_o", "50% Ada", "Zoë", "zoe"]
SPECIALTIES = ["Cardiology", "cardiología", "Neurology", "Oncology"]
SEARCHES = ["ad", "Á", "edi", "_", "%", "o", "zoe", "nothing"]

PROPERTY = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

orderings = st.lists(
    st.tuples(st.sampled_from(PATIENT_ORDERING), st.booleans()),
    max_size=3,
    unique_by=lambda x: x[0],
)


def _ordering_text(keys: list[tuple[str, bool]]) -> str | None:
    return ",".join(("-" if down else "") + field for field, down in keys) or None


def _python_order(items: list[Any], keys: list[tuple[str, bool]], value: Any) -> list[Any]:
    ordered = sorted(items, key=lambda item: item.id)
    for field, descending in reversed(keys):

        def sort_key(item: Any, f: str = field) -> Any:
            return value(item, f)

        ordered.sort(key=sort_key, reverse=descending)
    return ordered


async def _walk(list_page: Any, size: int) -> tuple[list[Any], set[int]]:
    seen: list[Any] = []
    totals: set[int] = set()
    offset = 0
    while True:
        page = await list_page(PageRequest(limit=size, offset=offset))
        totals.add(page.total)
        seen.extend(page.items)
        if not page.items:
            return seen, totals
        offset += size


@PROPERTY
@given(
    people=st.lists(
        st.tuples(st.sampled_from(NAMES), st.integers(0, 150), st.sampled_from(list(Gender))),
        max_size=12,
    ),
    search=st.none() | st.sampled_from(SEARCHES),
    gender=st.none() | st.sampled_from(list(Gender)),
    ages=st.tuples(st.none() | st.integers(0, 150), st.none() | st.integers(0, 150)),
    keys=orderings,
    size=st.integers(1, 5),
)
async def test_a_walk_over_patients_is_pythons_filter_and_sort(
    new_uow: UowFactory,
    people: list[tuple[str, int, Gender]],
    search: str | None,
    gender: Gender | None,
    ages: tuple[int | None, int | None],
    keys: list[tuple[str, bool]],
    size: int,
) -> None:
    low, high = sorted(ages) if None not in ages else ages  # type: ignore[type-var]
    owner_name = f"prop-{uuid.uuid4().hex[:12]}"
    async with new_uow() as uow:
        owner = await uow.users.add(NewUser(owner_name, f"{owner_name}@x.org", "hash"))
        stored = [
            await uow.patients.add(owner.id, PatientData(name, age, sex))
            for name, age, sex in people
        ]
        await uow.commit()
    where = patient_filter(
        search=search,
        gender=None if gender is None else gender.value,
        min_age=low,
        max_age=high,
        ordering=_ordering_text(keys),
    )

    async def list_page(page: PageRequest) -> Any:
        async with new_uow() as uow:
            return await uow.patients.list(owner.id, page, where)

    walked, totals = await _walk(list_page, size)

    def admitted(patient: Patient) -> bool:
        return (
            (search is None or search_key(search) in search_key(patient.name))
            and (gender is None or patient.gender is gender)
            and (low is None or patient.age >= low)
            and (high is None or patient.age <= high)
        )

    def value(patient: Patient, field: str) -> Any:
        return search_key(patient.name) if field == "name" else getattr(patient, field)

    expected = _python_order([p for p in stored if admitted(p)], keys, value)
    assert [p.id for p in walked] == [p.id for p in expected]
    assert totals == {len(expected)}


@PROPERTY
@given(
    created=st.lists(st.integers(0, 5), min_size=1, max_size=8),
    bounds=st.tuples(st.none() | st.integers(0, 6), st.none() | st.integers(0, 6)),
)
async def test_creation_times_bound_a_walk(
    new_uow: UowFactory, created: list[int], bounds: tuple[int | None, int | None]
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    after, before = (None if b is None else start + timedelta(days=b) for b in bounds)
    if after is not None and before is not None and after >= before:
        after, before = before - timedelta(days=1), after + timedelta(days=1)
    owner_name = f"prop-{uuid.uuid4().hex[:12]}"
    async with new_uow() as uow:
        owner = await uow.users.add(NewUser(owner_name, f"{owner_name}@x.org", "hash"))
        ids = [
            (await uow.patients.add(owner.id, PatientData("P", 1, Gender.OTHER))).id
            for _ in created
        ]
        await uow.commit()
    # Creation times the test chooses: written through the port, read back by the filter.
    moments = {pid: start + timedelta(days=day) for pid, day in zip(ids, created, strict=True)}
    await _set_created(new_uow, moments)
    where = patient_filter(created_after=after, created_before=before, ordering="-created_at")

    async def list_page(page: PageRequest) -> Any:
        async with new_uow() as uow:
            return await uow.patients.list(owner.id, page, where)

    walked, totals = await _walk(list_page, 3)

    expected = sorted(
        (
            pid
            for pid, at in moments.items()
            if (after is None or at > after) and (before is None or at < before)
        ),
        key=lambda pid: (-moments[pid].timestamp(), pid),
    )
    assert [p.id for p in walked] == expected
    assert totals == {len(expected)}


async def _set_created(new_uow: UowFactory, moments: dict[int, datetime]) -> None:
    """Back-date patients: no port changes created_at, so each adapter is told directly."""
    uow = new_uow()
    from healthcare.adapters.persistence.memory import MemoryUnitOfWork  # noqa: PLC0415

    if isinstance(uow, MemoryUnitOfWork):
        from dataclasses import replace  # noqa: PLC0415

        store = uow._store
        for pid, at in moments.items():
            store.tables.patients[pid] = replace(store.tables.patients[pid], created_at=at)
        return
    from sqlalchemy import bindparam, update  # noqa: PLC0415

    from healthcare.adapters.persistence.sqlalchemy.tables import patient  # noqa: PLC0415

    statement = (
        update(patient)
        .where(patient.c.id == bindparam("b_id"))
        .values(created_at=bindparam("at", type_=patient.c.created_at.type))
    )  # (updated_at is given too: its Python-side onupdate would need SQLAlchemy to run)
    from healthcare.adapters.persistence.sqlalchemy import SqlAlchemyUnitOfWork  # noqa: PLC0415

    assert isinstance(uow, SqlAlchemyUnitOfWork)
    async with uow:
        transaction = uow._transaction
        assert transaction is not None
        for pid, at in moments.items():
            await transaction.write(statement, {"b_id": pid, "at": at, "updated_at": at})
        await uow.commit()


@PROPERTY
@given(
    doctors=st.lists(
        st.tuples(st.sampled_from(NAMES), st.sampled_from(SPECIALTIES)), min_size=1, max_size=10
    ),
    search=st.none() | st.sampled_from(SEARCHES),
    specialty=st.none() | st.sampled_from(SPECIALTIES),
    keys=st.lists(
        st.tuples(st.sampled_from(DOCTOR_ORDERING), st.booleans()),
        max_size=2,
        unique_by=lambda x: x[0],
    ),
    size=st.integers(1, 4),
)
async def test_a_walk_over_doctors_is_pythons_filter_and_sort(
    new_uow: UowFactory,
    doctors: list[tuple[str, str]],
    search: str | None,
    specialty: str | None,
    keys: list[tuple[str, bool]],
    size: int,
) -> None:
    # The directory is shared: a tag of this example's own keeps other rows out.
    tag = uuid.uuid4().hex[:10]
    async with new_uow() as uow:
        creator = await uow.users.add(NewUser(f"prop-{tag}", f"prop-{tag}@x.org", "hash"))
        stored = [
            await uow.doctors.add(creator.id, DoctorData(f"{name} {tag}", specialization))
            for name, specialization in doctors
        ]
        await uow.commit()
    where = doctor_filter(search=tag, specialization=specialty, ordering=_ordering_text(keys))

    async def list_page(page: PageRequest) -> Any:
        async with new_uow() as uow:
            return await uow.doctors.list(page, where)

    walked, totals = await _walk(list_page, size)

    def admitted(doctor: Doctor) -> bool:
        return specialty is None or search_key(doctor.specialization) == search_key(specialty)

    def value(doctor: Doctor, field: str) -> Any:
        return doctor.id if field == "id" else search_key(getattr(doctor, field))

    expected = _python_order([d for d in stored if admitted(d)], keys, value)
    assert [d.id for d in walked] == [d.id for d in expected]
    assert totals == {len(expected)}
    if search is not None:  # a second search inside the tagged ones narrows as Python does
        narrowed = doctor_filter(search=search)
        async with new_uow() as uow:
            found = await uow.doctors.list(PageRequest(limit=1000), narrowed)
        mine = {d.id for d in found.items} & {d.id for d in stored}
        key = search_key(search)
        assert mine == {
            d.id for d in stored if key in search_key(d.name) or key in search_key(d.specialization)
        }
