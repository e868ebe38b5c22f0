"""The repositories' contract: every method through a unit of work, on each adapter.

The same tests run on SQLite, on PostgreSQL and on the in-memory adapter (``memory://``, and
the unit tests' fakes), so the fakes the use-case tests trust behave as the databases do.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import asdict, fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from healthcare.adapters.persistence.sqlalchemy import repositories
from healthcare.application.paging import Page, PageRequest
from healthcare.domain.audit import (
    AuditAction,
    AuditEvent,
    AuditOutcome,
    AuditQuery,
    ResourceType,
)
from healthcare.domain.entities import (
    Doctor,
    DoctorData,
    Gender,
    Mapping,
    NewUser,
    Patient,
    PatientData,
    RefreshSession,
    User,
)
from healthcare.domain.errors import Conflict, NotFound, PreconditionFailed
from healthcare.domain.listing import UserFilter, doctor_filter, patient_filter
from healthcare.domain.rules import identity_key
from tests.integration.conftest import UowFactory

T = TypeVar("T")


def unique(prefix: str = "user") -> str:
    # One database serves the whole session (and earlier runs, for SQLite files kept
    # around): names must never repeat.
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def add_user(new_uow: UowFactory, username: str | None = None) -> User:
    username = username or unique()
    async with new_uow() as uow:
        user = await uow.users.add(NewUser(username, f"{username}@example.org", "hash"))
        await uow.commit()
    return user


def patient_data(name: str = "Ada", **changes: object) -> PatientData:
    values: dict[str, object] = {
        "name": name,
        "age": 36,
        "gender": Gender.FEMALE,
        "phone": "+44 20 7946 0000",
        "email": "ada@example.org",
        "address": "12 St James's Square, London",
        "notes": "Allergic to nothing.",
    }
    return PatientData(**{**values, **changes})  # type: ignore[arg-type]


async def add_patient(new_uow: UowFactory, owner: User, name: str = "Ada") -> Patient:
    async with new_uow() as uow:
        patient = await uow.patients.add(owner.id, patient_data(name))
        await uow.commit()
    return patient


async def add_doctor(new_uow: UowFactory, creator: User, name: str = "Dr Who") -> Doctor:
    async with new_uow() as uow:
        doctor = await uow.doctors.add(creator.id, DoctorData(name, "Cardiology"))
        await uow.commit()
    return doctor


def listed(page: Page[T] | None) -> tuple[list[T], int]:
    """A page's items and total; None (the patient is not the owner's) fails the test."""
    assert page is not None
    return list(page.items), page.total


# Users ----------------------------------------------------------------------------------


async def test_user_add_get_and_find_by_login(new_uow: UowFactory) -> None:
    name = unique("Grace")
    async with new_uow() as uow:
        user = await uow.users.add(
            NewUser(name, f"{name}@Example.org", "h4sh", is_staff=True, is_superuser=False)
        )
        await uow.commit()
    assert user.id > 0
    assert (user.username, user.email, user.password_hash) == (name, f"{name}@Example.org", "h4sh")
    assert user.is_active and user.is_staff and not user.is_superuser
    assert user.date_joined.tzinfo is not None
    assert user.date_joined == user.updated_at

    async with new_uow() as uow:
        assert await uow.users.get(user.id) == user
        assert await uow.users.find_by_login(name.upper()) == user
        assert await uow.users.find_by_login(f"{name}@EXAMPLE.ORG".lower()) == user
        assert await uow.users.find_by_login(unique("nobody")) is None
        assert await uow.users.get(10**12) is None


async def test_username_is_unique_case_insensitively_even_beyond_ascii(
    new_uow: UowFactory,
) -> None:
    suffix = uuid.uuid4().hex[:12]
    first = await add_user(new_uow, f"Élodie-{suffix}")
    async with new_uow() as uow:
        with pytest.raises(Conflict) as raised:
            await uow.users.add(NewUser(f"élodie-{suffix}", f"other-{suffix}@example.org", "h"))
        assert raised.value.field == "username"
        # The savepoint kept the transaction usable.
        assert await uow.users.find_by_login(f"ÉLODIE-{suffix}") == first
        later = await uow.users.add(NewUser(f"later-{suffix}", f"later-{suffix}@x.org", "h"))
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.users.get(later.id) == later


async def test_email_is_unique_case_insensitively(new_uow: UowFactory) -> None:
    first = await add_user(new_uow)
    async with new_uow() as uow:
        with pytest.raises(Conflict) as raised:
            await uow.users.add(NewUser(unique(), first.email.upper(), "h"))
    assert raised.value.field == "email"


async def test_racing_registrations_of_one_username_give_one_conflict(
    new_uow: UowFactory,
) -> None:
    name = unique()

    async def register(email: str) -> User:
        async with new_uow() as uow:
            await uow.users.find_by_login(name)  # read first, as the use cases do
            user = await uow.users.add(NewUser(name, email, "h"))
            await uow.commit()
        return user

    results = await asyncio.gather(
        register(f"a-{name}@example.org"),
        register(f"b-{name}@example.org"),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "User"]


async def test_a_changed_email_claims_its_login_name(new_uow: UowFactory) -> None:
    """As at registration: no account's new email may be, or look like, another account's
    username or email; the old email's name is free for others afterwards."""
    user = await add_user(new_uow)
    other = await add_user(new_uow, f"{unique()}@example.org")  # a username like an email
    async with new_uow() as uow:
        with pytest.raises(Conflict) as caught:
            await uow.users.set_email(user.id, other.username.upper())
        assert caught.value.field == "email"
        # A Cyrillic small ie (U+0435) for the Latin "e" of example.org: a look-alike.
        lookalike = other.username.replace("example", "\u0435xample")
        with pytest.raises(Conflict):
            await uow.users.set_email(user.id, lookalike)
        moved = await uow.users.set_email(user.id, f"moved-{user.email}")
        await uow.commit()
    assert moved is not None
    newcomer = unique()
    async with new_uow() as uow:  # the old email is nobody's name any more
        freed = await uow.users.add(NewUser(newcomer, user.email, "hash"))
        await uow.commit()
    assert freed.email == user.email


async def test_user_flags_email_and_password_hash_change(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    other = await add_user(new_uow)
    async with new_uow() as uow:
        staff = await uow.users.set_staff(user.id, True)
        inactive = await uow.users.set_active(user.id, False)
        rehashed = await uow.users.set_password_hash(user.id, "new-hash")
        assert await uow.users.set_staff(10**12, True) is None
        assert await uow.users.set_email(10**12, "x@example.org") is None
        await uow.commit()
    assert staff is not None and staff.is_staff
    assert inactive is not None and not inactive.is_active and inactive.is_staff
    assert rehashed is not None and rehashed.password_hash == "new-hash"
    async with new_uow() as uow:
        with pytest.raises(Conflict) as caught:
            await uow.users.set_email(user.id, other.email.upper())
        assert caught.value.field == "email"
        # The transaction goes on after the refusal, and one's own email in another case is
        # no conflict.
        renamed = await uow.users.set_email(user.id, user.email.upper())
        await uow.commit()
    assert renamed is not None and renamed.email == user.email.upper()
    async with new_uow() as uow:
        stored = await uow.users.get(user.id)
        assert stored == renamed
        assert await uow.users.find_by_login(user.email.lower()) == renamed


async def test_user_list_searches_filters_and_pages(new_uow: UowFactory) -> None:
    tag = uuid.uuid4().hex[:10]
    first = await add_user(new_uow, f"Zed_{tag}_one")
    second = await add_user(new_uow, f"zed_{tag}_two")
    async with new_uow() as uow:
        third = await uow.users.add(NewUser(f"plain-{tag}", f"ZED_{tag}@example.org", "h"))
        await uow.users.set_staff(second.id, True)
        await uow.users.set_active(third.id, False)
        await uow.commit()
    search = f"zed_{tag}".upper()  # any letter case, and "_" is no wildcard
    async with new_uow() as uow:
        page = await uow.users.list(PageRequest(), UserFilter(search=identity_key(search)))
        assert [u.id for u in page.items] == [first.id, second.id, third.id]
        assert page.total == 3
        key = identity_key(search)
        staff = await uow.users.list(PageRequest(), UserFilter(key, is_staff=True))
        assert ([u.id for u in staff.items], staff.total) == ([second.id], 1)
        active = await uow.users.list(
            PageRequest(), UserFilter(key, is_staff=False, is_active=True)
        )
        assert [u.id for u in active.items] == [first.id]
        inactive = await uow.users.list(PageRequest(), UserFilter(key, is_active=False))
        assert [u.id for u in inactive.items] == [third.id]
        paged = await uow.users.list(PageRequest(limit=1, offset=1), UserFilter(key))
        assert ([u.id for u in paged.items], paged.total) == ([second.id], 3)
        past = await uow.users.list(PageRequest(limit=1, offset=5), UserFilter(key))
        assert (list(past.items), past.total) == ([], 3)
        nothing = await uow.users.list(PageRequest(), UserFilter(identity_key(f"{tag}%x")))
        assert nothing.total == 0
        everyone = await uow.users.list(PageRequest(limit=1))
        assert everyone.total >= 3


# Patients -------------------------------------------------------------------------------


async def test_patient_lifecycle_is_scoped_to_its_owner(new_uow: UowFactory) -> None:
    owner, stranger = await add_user(new_uow), await add_user(new_uow)
    patient = await add_patient(new_uow, owner)
    assert patient.created_by == owner.id
    assert patient.gender is Gender.FEMALE
    assert (patient.name, patient.age, patient.notes) == ("Ada", 36, "Allergic to nothing.")
    assert patient.created_at == patient.updated_at

    changed = patient_data("Ada Lovelace", age=37, gender=Gender.UNKNOWN, phone=None, notes=None)
    async with new_uow() as uow:
        assert await uow.patients.get(owner.id, patient.id) == patient
        assert await uow.patients.get(stranger.id, patient.id) is None
        assert await uow.patients.update(stranger.id, patient.id, changed) is None
        assert await uow.patients.delete(stranger.id, patient.id) is False
        updated = await uow.patients.update(owner.id, patient.id, changed)
        await uow.commit()
    assert updated is not None
    assert updated == replace(patient, updated_at=updated.updated_at, version=2, **asdict(changed))
    assert updated.updated_at > patient.updated_at

    async with new_uow() as uow:
        assert await uow.patients.get(owner.id, patient.id) == updated
        assert await uow.patients.update(owner.id, 10**12, changed) is None
        assert await uow.patients.delete(owner.id, patient.id) is True
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.patients.get(owner.id, patient.id) is None
        assert await uow.patients.delete(owner.id, patient.id) is False


async def test_a_patient_changes_only_at_the_version_asked_for(new_uow: UowFactory) -> None:
    owner, stranger = await add_user(new_uow), await add_user(new_uow)
    patient = await add_patient(new_uow, owner)
    assert patient.version == 1
    changed = patient_data("Ada Byron")

    async with new_uow() as uow:
        with pytest.raises(PreconditionFailed) as stale:
            await uow.patients.update(owner.id, patient.id, changed, expected_version=7)
        assert stale.value.current_version == 1
        with pytest.raises(PreconditionFailed):
            await uow.patients.delete(owner.id, patient.id, expected_version=0)
        # Another owner's patient is not there at all, whatever version is asked for.
        assert await uow.patients.update(stranger.id, patient.id, changed, 1) is None
        assert await uow.patients.delete(stranger.id, patient.id, 1) is False
        assert await uow.patients.update(owner.id, 10**12, changed, 1) is None
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.patients.get(owner.id, patient.id) == patient  # nothing changed

    async with new_uow() as uow:
        second = await uow.patients.update(owner.id, patient.id, changed, expected_version=1)
        third = await uow.patients.update(owner.id, patient.id, changed)
        await uow.commit()
    assert second is not None and third is not None
    assert (second.version, third.version, second.name) == (2, 3, "Ada Byron")
    async with new_uow() as uow:
        assert await uow.patients.delete(owner.id, patient.id, expected_version=3) is True
        await uow.commit()


async def test_a_patch_sets_only_the_fields_it_names(new_uow: UowFactory) -> None:
    owner, stranger = await add_user(new_uow), await add_user(new_uow)
    patient = await add_patient(new_uow, owner)
    renamed = f"Zoë {uuid.uuid4().hex[:8]}"
    changes = {"name": renamed, "gender": Gender.OTHER, "notes": None}

    async with new_uow() as uow:
        assert await uow.patients.patch(stranger.id, patient.id, changes) is None
        assert await uow.patients.patch(owner.id, 10**12, changes) is None
        with pytest.raises(PreconditionFailed) as stale:
            await uow.patients.patch(owner.id, patient.id, changes, expected_version=7)
        assert stale.value.current_version == 1
        assert await uow.patients.patch(stranger.id, patient.id, changes, 1) is None
        patched = await uow.patients.patch(owner.id, patient.id, changes, expected_version=1)
        await uow.commit()
    assert patched is not None
    assert patched == replace(
        patient,
        updated_at=patched.updated_at,
        version=2,
        name=renamed,
        gender=Gender.OTHER,
        notes=None,
    )
    assert patched.updated_at > patient.updated_at
    async with new_uow() as uow:
        assert await uow.patients.get(owner.id, patient.id) == patched
        # The search key follows the name.
        found = await uow.patients.list(owner.id, PageRequest(), patient_filter(search="ZOE"))
        aged = await uow.patients.patch(owner.id, patient.id, {"age": 99})
        await uow.commit()
    assert [p.id for p in found.items] == [patient.id]
    assert aged is not None
    assert aged == replace(patched, age=99, updated_at=aged.updated_at, version=3)


async def test_racing_changes_at_one_version_have_one_winner(new_uow: UowFactory) -> None:
    owner = await add_user(new_uow)
    patient = await add_patient(new_uow, owner)

    async def change(name: str) -> Patient | BaseException:
        try:
            async with new_uow() as uow:
                result = await uow.patients.update(owner.id, patient.id, patient_data(name), 1)
                await uow.commit()
        except PreconditionFailed as refused:
            return refused
        assert result is not None
        return result

    results = await asyncio.gather(change("First"), change("Second"))

    winners = [r for r in results if isinstance(r, Patient)]
    assert len(winners) == 1 and winners[0].version == 2
    assert sum(isinstance(r, PreconditionFailed) for r in results) == 1


async def test_a_doctor_changes_only_at_the_version_asked_for(new_uow: UowFactory) -> None:
    creator = await add_user(new_uow)
    async with new_uow() as uow:
        doctor = await uow.doctors.add(creator.id, DoctorData("Dr. Who", "Time"))
        await uow.commit()
    assert doctor.version == 1
    changed = DoctorData("Dr. Who", "Space")

    async with new_uow() as uow:
        with pytest.raises(PreconditionFailed):
            await uow.doctors.update(doctor.id, changed, expected_version=2)
        with pytest.raises(PreconditionFailed):
            await uow.doctors.delete(doctor.id, expected_version=2)
        assert await uow.doctors.update(10**12, changed, 1) is None
        updated = await uow.doctors.update(doctor.id, changed, expected_version=1)
        await uow.commit()
    assert updated is not None and (updated.version, updated.specialization) == (2, "Space")
    async with new_uow() as uow:
        assert await uow.doctors.delete(doctor.id, expected_version=2) is True
        await uow.commit()


async def test_patient_list_pages_the_owners_patients_in_id_order(new_uow: UowFactory) -> None:
    owner, stranger, loner = [await add_user(new_uow) for _ in range(3)]
    mine = [await add_patient(new_uow, owner, f"P{i}") for i in range(5)]
    await add_patient(new_uow, stranger, "Not yours")

    async with new_uow() as uow:
        everything = await uow.patients.list(owner.id, PageRequest())
        first = await uow.patients.list(owner.id, PageRequest(limit=2))
        last = await uow.patients.list(owner.id, PageRequest(limit=2, offset=4))
        beyond = await uow.patients.list(owner.id, PageRequest(limit=2, offset=10))
        none = await uow.patients.list(loner.id, PageRequest())
    assert list(everything.items) == mine
    assert everything.total == 5
    assert [p.id for p in first.items] == [mine[0].id, mine[1].id]
    assert first.total == 5
    assert [p.id for p in last.items] == [mine[4].id]
    assert last.total == 5
    assert (list(beyond.items), beyond.total) == ([], 5)
    assert (list(none.items), none.total) == ([], 0)


# Each name, and the searches that must find it and no other: LIKE's wildcards (% and _) and
# its escape character (/) are letters here, searched for literally; a search as long as a
# name piece (three letters, PostgreSQL's index) or longer or shorter.
LITERAL_NAMES = ["b_o", "bxo", "50% off", "50 x off", "a/b", "a//b", "ab"]
LITERAL_SEARCHES = {
    "b_o": ["b_o"],
    "_": ["b_o"],
    "0%": ["50% off"],
    "0% o": ["50% off"],
    "%": ["50% off"],
    "a/b": ["a/b"],
    "/": ["a/b", "a//b"],
    "//": ["a//b"],
    "x": ["bxo", "50 x off"],
}


@pytest.mark.parametrize("search", list(LITERAL_SEARCHES))
async def test_a_search_matches_wildcards_and_the_escape_literally(
    new_uow: UowFactory, search: str
) -> None:
    owner, stranger = await add_user(new_uow), await add_user(new_uow)
    mine = {name: await add_patient(new_uow, owner, name) for name in LITERAL_NAMES}
    for name in LITERAL_NAMES:  # the same names, someone else's
        await add_patient(new_uow, stranger, name)
    where = patient_filter(search=search)

    async with new_uow() as uow:
        found = await uow.patients.list(owner.id, PageRequest(), where)
        first = await uow.patients.list(owner.id, PageRequest(limit=1), where)
        beyond = await uow.patients.list(owner.id, PageRequest(limit=1, offset=10), where)
    expected = [mine[name].id for name in LITERAL_SEARCHES[search]]
    assert [p.id for p in found.items] == expected
    assert (found.total, first.total, beyond.total) == (len(expected),) * 3
    assert [p.id for p in first.items] == expected[:1]
    assert list(beyond.items) == []


async def test_a_three_letter_search_follows_adds_renames_and_deletes(
    new_uow: UowFactory,
) -> None:
    """On PostgreSQL a three-letter search takes its total from counts that triggers keep
    (migration 0010) and reads its page one of two ways by how many match: every change of
    a name must move the total, and the pages must agree with it at every page size."""
    owner, stranger = await add_user(new_uow), await add_user(new_uow)
    names = ["Ada", "Adam", "Bada", "Hadar", "Grace", "Edith", "Canada", "Zed"]
    mine = [await add_patient(new_uow, owner, name) for name in names]
    await add_patient(new_uow, stranger, "Ada")
    async with new_uow() as uow:  # many that do not match: few matches take the other way
        await uow.patients.add_many(owner.id, [patient_data(f"Zed {n}") for n in range(40)])
        await uow.commit()
    where = patient_filter(search="ADA")
    newest_first = patient_filter(search="ada", ordering="-id")

    async def pages(size: int, filtered: Any = where) -> tuple[list[int], set[int]]:
        ids: list[int] = []
        totals: set[int] = set()
        async with new_uow() as uow:
            for offset in range(0, 10 + size, size):
                page = await uow.patients.list(owner.id, PageRequest(size, offset), filtered)
                ids += [p.id for p in page.items]
                totals.add(page.total)
        return ids, totals

    async def expect(*matching: Patient) -> None:
        ids = sorted(p.id for p in matching)
        for size in (1, 2, 20):
            assert await pages(size) == (ids, {len(ids)})
        assert await pages(3, newest_first) == (ids[::-1], {len(ids)})

    ada, adam, bada, hadar, grace, edith, canada, zed = mine
    await expect(ada, adam, bada, hadar, canada)
    async with new_uow() as uow:
        await uow.patients.update(owner.id, grace.id, patient_data("Graciela Adanero"))
        await uow.patients.patch(owner.id, ada.id, {"name": "Eve"})
        await uow.patients.patch(owner.id, edith.id, {"name": "Adalyn"})
        await uow.patients.patch(owner.id, zed.id, {"notes": "no name change"})
        await uow.patients.update(owner.id, adam.id, patient_data("Adam Adamson"))
        assert await uow.patients.delete(owner.id, bada.id)
        await uow.commit()
    await expect(adam, hadar, grace, edith, canada)
    async with new_uow() as uow:  # a change undone leaves the counts as they were
        await uow.patients.patch(owner.id, hadar.id, {"name": "Eve"})
        assert await uow.patients.delete(owner.id, canada.id)
    await expect(adam, hadar, grace, edith, canada)


# Doctors --------------------------------------------------------------------------------


async def test_doctor_lifecycle(new_uow: UowFactory) -> None:
    creator = await add_user(new_uow)
    async with new_uow() as uow:
        doctor = await uow.doctors.add(
            creator.id, DoctorData("Dr Quinn", "Medicine", "quinn@x.org", "5")
        )
        await uow.commit()
    assert (doctor.created_by, doctor.created_at) == (creator.id, doctor.updated_at)
    assert doctor.name == "Dr Quinn"
    assert (doctor.specialization, doctor.email, doctor.phone) == ("Medicine", "quinn@x.org", "5")

    async with new_uow() as uow:
        assert await uow.doctors.get(doctor.id) == doctor
        updated = await uow.doctors.update(doctor.id, DoctorData("Dr M. Quinn", "Frontier"))
        assert await uow.doctors.update(10**12, DoctorData("x", "y")) is None
        await uow.commit()
    assert updated is not None
    expected = replace(doctor, name="Dr M. Quinn", specialization="Frontier", email=None)
    assert updated == replace(expected, phone=None, updated_at=updated.updated_at, version=2)
    assert updated.updated_at > doctor.updated_at

    async with new_uow() as uow:
        assert await uow.doctors.get(doctor.id) == updated
        assert await uow.doctors.delete(doctor.id) is True
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.doctors.get(doctor.id) is None
        assert await uow.doctors.delete(doctor.id) is False


async def test_doctor_list_is_shared_and_paged(new_uow: UowFactory) -> None:
    creator, other = await add_user(new_uow), await add_user(new_uow)
    ours = [await add_doctor(new_uow, creator), await add_doctor(new_uow, other)]
    async with new_uow() as uow:
        total = (await uow.doctors.list(PageRequest(limit=1))).total
        head = await uow.doctors.list(PageRequest(limit=50))
        # Other tests add doctors too, but none after ours by now: ours have the last ids.
        tail = await uow.doctors.list(PageRequest(limit=5, offset=total - 2))
        beyond = await uow.doctors.list(PageRequest(limit=5, offset=total))
    ids = [d.id for d in head.items]
    assert ids == sorted(ids)
    assert (len(head.items), head.total) == (min(total, 50), total)
    assert (list(tail.items), tail.total) == (ours, total)
    assert (list(beyond.items), beyond.total) == ([], total)


# Mappings -------------------------------------------------------------------------------


async def test_mapping_lifecycle_and_listings(new_uow: UowFactory) -> None:
    owner, stranger = await add_user(new_uow), await add_user(new_uow)
    patient, other_patient = await add_patient(new_uow, owner), await add_patient(new_uow, owner)
    doctors = [await add_doctor(new_uow, stranger, f"Dr {i}") for i in range(3)]

    async with new_uow() as uow:
        first = await uow.mappings.add(owner.id, patient.id, doctors[0].id)
        second = await uow.mappings.add(owner.id, patient.id, doctors[1].id)
        third = await uow.mappings.add(owner.id, other_patient.id, doctors[2].id)
        await uow.commit()
    assert (first.patient_id, first.doctor) == (patient.id, doctors[0])
    assert first.created_at == first.updated_at

    async with new_uow() as uow:
        assert await uow.mappings.get(owner.id, first.id) == first
        assert await uow.mappings.get(stranger.id, first.id) is None
        by_owner = await uow.mappings.list_for_owner(owner.id, PageRequest())
        by_owner_page = await uow.mappings.list_for_owner(owner.id, PageRequest(1, 1))
        for_stranger = await uow.mappings.list_for_owner(stranger.id, PageRequest())
        by_patient = await uow.mappings.list_for_patient(owner.id, patient.id, PageRequest())
        past_end = await uow.mappings.list_for_patient(owner.id, patient.id, PageRequest(offset=2))
        its_doctors = await uow.mappings.doctors_of_patient(owner.id, patient.id, PageRequest())
        its_second = await uow.mappings.doctors_of_patient(owner.id, patient.id, PageRequest(1, 1))
        doctors_past_end = await uow.mappings.doctors_of_patient(
            owner.id, patient.id, PageRequest(1, 9)
        )
        # Someone else's patient: no page at all, whether it has mappings or not.
        not_theirs = await uow.mappings.list_for_patient(stranger.id, patient.id, PageRequest())
        not_their_doctors = await uow.mappings.doctors_of_patient(
            stranger.id, patient.id, PageRequest()
        )
        no_such = await uow.mappings.list_for_patient(owner.id, 10**12, PageRequest())
        with pytest.raises(NotFound) as not_their_patient:
            await uow.mappings.add(stranger.id, patient.id, doctors[2].id)
    assert listed(by_owner) == ([first, second, third], 3)
    assert listed(by_owner_page) == ([second], 3)
    assert listed(for_stranger) == ([], 0)
    assert listed(by_patient) == ([first, second], 2)
    assert listed(past_end) == ([], 2)
    assert listed(its_doctors) == (doctors[:2], 2)
    assert listed(its_second) == ([doctors[1]], 2)
    assert listed(doctors_past_end) == ([], 2)
    assert not_theirs is None and not_their_doctors is None and no_such is None
    assert not_their_patient.value.resource == "Patient"

    async with new_uow() as uow:
        assert await uow.mappings.delete(first.id) is True
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.mappings.delete(first.id) is False
        assert await uow.mappings.get(owner.id, first.id) is None
        remaining = await uow.mappings.list_for_patient(owner.id, patient.id, PageRequest())
    assert listed(remaining) == ([second], 1)


async def test_duplicate_mapping_is_a_conflict_and_the_uow_survives_it(
    new_uow: UowFactory,
) -> None:
    owner = await add_user(new_uow)
    patient, doctor = await add_patient(new_uow, owner), await add_doctor(new_uow, owner)
    other_doctor = await add_doctor(new_uow, owner)
    async with new_uow() as uow:
        await uow.mappings.add(owner.id, patient.id, doctor.id)
        with pytest.raises(Conflict, match="already assigned"):
            await uow.mappings.add(owner.id, patient.id, doctor.id)
        await uow.mappings.add(owner.id, patient.id, other_doctor.id)
        await uow.commit()
    async with new_uow() as uow:
        page = await uow.mappings.doctors_of_patient(owner.id, patient.id, PageRequest())
    assert listed(page) == ([doctor, other_doctor], 2)


async def test_mapping_to_a_vanished_doctor_or_patient_is_not_found(new_uow: UowFactory) -> None:
    owner = await add_user(new_uow)
    patient, doctor = await add_patient(new_uow, owner), await add_doctor(new_uow, owner)
    async with new_uow() as uow:
        with pytest.raises(NotFound) as no_doctor:
            await uow.mappings.add(owner.id, patient.id, 10**12)
        with pytest.raises(NotFound) as no_patient:
            await uow.mappings.add(owner.id, 10**12, doctor.id)
        # Still usable afterwards.
        assert (await uow.mappings.add(owner.id, patient.id, doctor.id)).doctor == doctor
    assert (no_doctor.value.resource, no_doctor.value.identifier) == ("Doctor", 10**12)
    assert (no_patient.value.resource, no_patient.value.identifier) == ("Patient", 10**12)


async def test_a_doctor_deleted_while_being_assigned_is_not_found(new_uow: UowFactory) -> None:
    owner = await add_user(new_uow)
    patient, doctor = await add_patient(new_uow, owner), await add_doctor(new_uow, owner)

    async def assign() -> object:
        async with new_uow() as uow:
            return await uow.mappings.add(owner.id, patient.id, doctor.id)

    async with new_uow() as deleter:
        assert await deleter.doctors.delete(doctor.id)
        assigning = asyncio.create_task(assign())
        await asyncio.sleep(0.2)  # long enough to reach the deleter's lock and wait there
        assert not assigning.done()
        await deleter.commit()
    with pytest.raises(NotFound) as raised:
        await assigning
    assert (raised.value.resource, raised.value.identifier) == ("Doctor", doctor.id)


async def test_deleting_a_patient_or_doctor_removes_its_mappings(new_uow: UowFactory) -> None:
    owner = await add_user(new_uow)
    patient, kept_patient = await add_patient(new_uow, owner), await add_patient(new_uow, owner)
    doctor, kept_doctor = await add_doctor(new_uow, owner), await add_doctor(new_uow, owner)
    async with new_uow() as uow:
        gone_with_patient = await uow.mappings.add(owner.id, patient.id, kept_doctor.id)
        gone_with_doctor = await uow.mappings.add(owner.id, kept_patient.id, doctor.id)
        kept = await uow.mappings.add(owner.id, kept_patient.id, kept_doctor.id)
        await uow.commit()

    async with new_uow() as uow:
        assert await uow.patients.delete(owner.id, patient.id)
        assert await uow.doctors.delete(doctor.id)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.mappings.get(owner.id, gone_with_patient.id) is None
        assert await uow.mappings.get(owner.id, gone_with_doctor.id) is None
        remaining = await uow.mappings.list_for_owner(owner.id, PageRequest())
    assert (list(remaining.items), remaining.total) == ([kept], 1)


async def test_racing_assignments_of_one_pair_give_one_conflict(new_uow: UowFactory) -> None:
    owner = await add_user(new_uow)
    patient, doctor = await add_patient(new_uow, owner), await add_doctor(new_uow, owner)

    async def assign() -> object:
        async with new_uow() as uow:
            # Read first, as AssignDoctorToPatient does.
            assert await uow.patients.get(owner.id, patient.id) is not None
            assert await uow.doctors.get(doctor.id) is not None
            mapping = await uow.mappings.add(owner.id, patient.id, doctor.id)
            await uow.commit()
        return mapping

    results = await asyncio.gather(assign(), assign(), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "Mapping"]
    async with new_uow() as uow:
        page = await uow.mappings.list_for_patient(owner.id, patient.id, PageRequest())
    assert listed(page)[1] == 1


# Unit of work ---------------------------------------------------------------------------


async def test_nothing_is_kept_without_commit(new_uow: UowFactory) -> None:
    owner = await add_user(new_uow)
    uow = new_uow()
    async with uow:
        await uow.patients.add(owner.id, patient_data("Left uncommitted"))
    async with uow:  # the same instance may be entered again
        await uow.patients.add(owner.id, patient_data("Rolled back"))
        await uow.rollback()
        kept = await uow.patients.add(owner.id, patient_data("Kept"))
        await uow.commit()

    async def fail() -> None:
        async with uow:
            await uow.patients.add(owner.id, patient_data("Failed"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await fail()
    async with uow:
        page = await uow.patients.list(owner.id, PageRequest())
    # (Compared whole, not by id: SQLite may hand a rolled-back id out again.)
    assert (list(page.items), page.total) == ([kept], 1)


async def test_one_instance_cannot_be_entered_twice_at_once(new_uow: UowFactory) -> None:
    uow = new_uow()
    async with uow:
        with pytest.raises(RuntimeError, match="already in use"):
            # Bounded: waiting on the unit's own lock would never end (memory, once).
            await asyncio.wait_for(uow.__aenter__(), timeout=5)


# Refresh sessions -----------------------------------------------------------------------


async def test_refresh_session_rotation_and_revocation(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    created = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)
    session = RefreshSession(uuid.uuid4().hex, user.id, "jti-1", created)
    async with new_uow() as uow:
        await uow.refresh_sessions.add(session)
        await uow.commit()

    stranger = await add_user(new_uow)
    async with new_uow() as uow:
        assert await uow.refresh_sessions.get(session.id) == session
        assert await uow.refresh_sessions.get(uuid.uuid4().hex) is None
        rotate = uow.refresh_sessions.rotate
        assert await rotate(session.id, stranger.id, "jti-1", "jti-2") is None  # not theirs
        assert await rotate(session.id, user.id, "jti-1", "jti-2") == user
        assert await rotate(session.id, user.id, "jti-1", "jti-3") is None  # stale
        assert await rotate(uuid.uuid4().hex, user.id, "jti-2", "jti-3") is None
        await uow.commit()
    async with new_uow() as uow:
        rotated = await uow.refresh_sessions.get(session.id)
    assert rotated == RefreshSession(session.id, user.id, "jti-2", created)

    revoked_at = datetime(2025, 5, 2, tzinfo=UTC)
    async with new_uow() as uow:
        await uow.refresh_sessions.revoke(session.id, revoked_at)
        await uow.refresh_sessions.revoke(session.id, datetime(2025, 5, 3, tzinfo=UTC))
        assert await uow.refresh_sessions.rotate(session.id, user.id, "jti-2", "jti-3") is None
        await uow.commit()
    async with new_uow() as uow:
        revoked = await uow.refresh_sessions.get(session.id)
    assert revoked is not None
    assert (revoked.current_jti, revoked.revoked_at) == ("jti-2", revoked_at)  # first revoke wins


async def test_racing_rotations_have_exactly_one_winner(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    session = RefreshSession(uuid.uuid4().hex, user.id, "spent", datetime.now(UTC))
    async with new_uow() as uow:
        await uow.refresh_sessions.add(session)
        await uow.commit()

    async def refresh(next_jti: str) -> bool:
        async with new_uow() as uow:
            # Both present the same spent token.
            rotated = await uow.refresh_sessions.rotate(session.id, user.id, "spent", next_jti)
            await uow.commit()
        return rotated is not None

    results = await asyncio.gather(refresh("a"), refresh("b"))
    assert sorted(results) == [False, True]


async def test_an_inactive_account_does_not_rotate(new_uow: UowFactory) -> None:
    user = await add_user(new_uow)
    session = RefreshSession(uuid.uuid4().hex, user.id, "jti-1", datetime.now(UTC))
    async with new_uow() as uow:
        await uow.refresh_sessions.add(session)
        await uow.users.set_active(user.id, False)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.refresh_sessions.rotate(session.id, user.id, "jti-1", "jti-2") is None
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.refresh_sessions.get(session.id) == session  # unchanged


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        # (username, email) of the first account, then of the second: {a} is an address,
        # {f} the same in a fullwidth first letter, {u} a unique name.
        (("{a}", "{u}@x.org"), ("{u}b", "{a}"), "email"),
        (("{u}", "{a}"), ("{a}", "{u}b@x.org"), "username"),
        (("admin{u}", "{u}@x.org"), ("\u0430dmin{u}", "{u}b@x.org"), "username"),
        (("{u}", "{a}"), ("{u}b", "{f}"), "email"),
    ],
    ids=["email-is-a-username", "username-is-an-email", "look-alike-username", "look-alike-email"],
)
async def test_no_two_accounts_have_login_names_alike(
    new_uow: UowFactory, first: tuple[str, str], second: tuple[str, str], field: str
) -> None:
    """Whichever registered first: sign-in looks emails up first, so an email equal to
    another account's username would take that name over."""
    address = f"{unique('name')}@example.org"
    names = {"a": address, "f": "\uff4e" + address[1:], "u": unique()}

    def user(username: str, email: str) -> NewUser:
        return NewUser(username.format(**names), email.format(**names), "h")

    async with new_uow() as uow:
        await uow.users.add(user(*first))
        await uow.commit()
    async with new_uow() as uow:
        with pytest.raises(Conflict) as caught:
            await uow.users.add(user(*second))
    assert caught.value.field == field


# Audit trail ----------------------------------------------------------------------------


def audit_event(user_id: int, **changes: object) -> AuditEvent:
    values: dict[str, object] = {
        "occurred_at": datetime(2026, 1, 1, tzinfo=UTC),
        "action": AuditAction.PATIENT_READ,
        "outcome": AuditOutcome.SUCCESS,
        "user_id": user_id,
        "resource_type": ResourceType.PATIENT,
        "resource_id": 7,
        "client": "203.0.113.9",
        "request_id": "req-1",
    }
    return AuditEvent(**{**values, **changes})  # type: ignore[arg-type]


def some_user_id() -> int:
    # The trail has no foreign key; a random id keeps this test's events apart.
    return uuid.uuid4().int % 2**52 + 1


class TestAuditRepository:
    async def test_added_events_read_back_newest_first_with_filters(
        self, new_uow: UowFactory
    ) -> None:
        user_id = some_user_id()
        day = timedelta(days=1)
        start = datetime(2026, 1, 1, tzinfo=UTC)
        events = [
            audit_event(user_id, occurred_at=start),
            audit_event(user_id, occurred_at=start + day, action=AuditAction.PATIENT_UPDATE),
            audit_event(user_id, occurred_at=start + 2 * day, resource_id=8, client=None),
        ]
        async with new_uow() as uow:
            await uow.audit.add(events)
            await uow.commit()

        async with new_uow() as uow:
            everything = await uow.audit.list(AuditQuery(user_id=user_id), PageRequest())
            updates = await uow.audit.list(
                AuditQuery(user_id=user_id, action=AuditAction.PATIENT_UPDATE), PageRequest()
            )
            of_seven = await uow.audit.list(
                AuditQuery(user_id=user_id, resource_type=ResourceType.PATIENT, resource_id=7),
                PageRequest(),
            )
            window = await uow.audit.list(
                AuditQuery(user_id=user_id, since=start + day, until=start + 2 * day),
                PageRequest(),
            )
            second_page = await uow.audit.list(
                AuditQuery(user_id=user_id), PageRequest(limit=2, offset=2)
            )
            past_the_end = await uow.audit.list(
                AuditQuery(user_id=user_id), PageRequest(limit=2, offset=5)
            )

        assert everything.total == 3
        assert [e.occurred_at for e in everything.items] == [
            start + 2 * day,
            start + day,
            start,
        ]
        stored = everything.items[-1]
        assert stored.id is not None
        assert replace(stored, id=None) == events[0]
        assert everything.items[0].client is None
        assert [e.action for e in updates.items] == [AuditAction.PATIENT_UPDATE]
        assert {e.resource_id for e in of_seven.items} == {7} and of_seven.total == 2
        assert [e.occurred_at for e in window.items] == [start + day]
        assert (len(second_page.items), second_page.total) == (1, 3)
        assert (past_the_end.items, past_the_end.total) == ([], 3)

    async def test_nothing_is_kept_without_a_commit(self, new_uow: UowFactory) -> None:
        user_id = some_user_id()
        async with new_uow() as uow:
            await uow.audit.add([audit_event(user_id)])
        async with new_uow() as uow:
            assert (await uow.audit.list(AuditQuery(user_id=user_id), PageRequest())).total == 0

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_event SET outcome = 'denied' WHERE user_id = :user_id",
            "DELETE FROM audit_event WHERE user_id = :user_id",
        ],
    )
    async def test_the_database_refuses_to_change_or_remove_an_event(
        self, sql_new_uow: UowFactory, engine: AsyncEngine, statement: str
    ) -> None:
        new_uow = sql_new_uow
        user_id = some_user_id()
        async with new_uow() as uow:
            await uow.audit.add([audit_event(user_id)])
            await uow.commit()

        async with engine.begin() as connection:
            with pytest.raises(DBAPIError, match="append-only"):
                await connection.execute(text(statement), {"user_id": user_id})

        async with new_uow() as uow:
            kept = await uow.audit.list(AuditQuery(user_id=user_id), PageRequest())
        assert [e.outcome for e in kept.items] == [AuditOutcome.SUCCESS]


@pytest.mark.parametrize(
    ("columns", "record"),
    [
        (repositories._PATIENT_COLUMNS, Patient),
        (repositories._DOCTOR_COLUMNS, Doctor),
        (repositories._MAPPING_COLUMNS[:4], Mapping),
    ],
)
def test_rows_become_records_by_position_in_field_order(columns: Any, record: Any) -> None:
    """The repositories build records from rows positionally (three times cheaper than by
    keyword), so the selected columns must follow the record's fields. A mapping's doctor
    is built from the columns after its own four."""
    names = [column.key.removeprefix("mapping_") for column in columns]
    assert names == [f.name for f in fields(record) if f.name != "doctor"]


# Bulk: administrators' reads and imports ---------------------------------------------------


async def test_patient_find_and_bulk_add_and_batches(new_uow: UowFactory) -> None:
    owner = await add_user(new_uow)
    other = await add_user(new_uow)
    rows = [patient_data(f"Bülk {n}\tTab\\Slash\nLine", notes=None) for n in range(5)]
    async with new_uow() as uow:
        ids = await uow.patients.add_many(owner.id, rows)
        assert await uow.patients.add_many(owner.id, []) == []
        await uow.commit()
    assert len(ids) == 5 and list(ids) == sorted(ids)
    theirs = await add_patient(new_uow, other, "Other")
    async with new_uow() as uow:
        stored = [await uow.patients.get(owner.id, patient_id) for patient_id in ids]
        assert [p.data() if p else None for p in stored] == rows
        assert await uow.patients.find(theirs.id) == theirs
        assert await uow.patients.find(10**12) is None
        first = await uow.patients.batch_after(owner.id, 0, 3)
        rest = await uow.patients.batch_after(owner.id, first[-1].id, 3)
        assert [p.id for p in [*first, *rest]] == list(ids)
        every = await uow.patients.batch_after(None, ids[0] - 1, 10**6)
        assert {*ids, theirs.id} <= {p.id for p in every}
        # Search keys are written too: the imported are found by name.
        page = await uow.patients.list(owner.id, PageRequest(), patient_filter(search="bulk 3"))
        assert [p.id for p in page.items] == [ids[3]]
        assert (await uow.patients.list(owner.id, PageRequest())).total == 5


async def test_bulk_add_is_undone_with_its_transaction(new_uow: UowFactory) -> None:
    owner = await add_user(new_uow)
    async with new_uow() as uow:
        await uow.patients.add_many(owner.id, [patient_data()])
        await uow.rollback()
    async with new_uow() as uow:
        assert (await uow.patients.list(owner.id, PageRequest())).total == 0


async def test_doctor_bulk_add_and_batches(new_uow: UowFactory) -> None:
    creator = await add_user(new_uow)
    tag = unique("Dr")
    rows = [DoctorData(f"{tag} {n}", "Cardiology", None, "+1") for n in range(3)]
    async with new_uow() as uow:
        ids = await uow.doctors.add_many(creator.id, rows)
        await uow.commit()
    async with new_uow() as uow:
        batch = await uow.doctors.batch_after(ids[0] - 1, 2)
        assert [d.id for d in batch] == list(ids[:2])
        assert [(d.data(), d.created_by) for d in batch] == [(r, creator.id) for r in rows[:2]]
        found = await uow.doctors.list(PageRequest(), doctor_filter(search=tag))
        assert found.total == 3


async def test_mapping_batches(new_uow: UowFactory) -> None:
    owner = await add_user(new_uow)
    other = await add_user(new_uow)
    mine, theirs = await add_patient(new_uow, owner), await add_patient(new_uow, other)
    doctor = await add_doctor(new_uow, owner)
    async with new_uow() as uow:
        first = await uow.mappings.add(owner.id, mine.id, doctor.id)
        second = await uow.mappings.add(other.id, theirs.id, doctor.id)
        await uow.commit()
    async with new_uow() as uow:
        assert await uow.mappings.batch_after(owner.id, 0, 10) == [first]
        every = await uow.mappings.batch_after(None, first.id - 1, 10)
        assert [m.id for m in every][:2] == [first.id, second.id]
        assert await uow.mappings.batch_after(owner.id, first.id, 10) == []


async def test_audit_add_for_each(new_uow: UowFactory) -> None:
    actor = await add_user(new_uow)
    moment = datetime.now(UTC).replace(microsecond=0)
    event = AuditEvent(
        moment, AuditAction.PATIENT_IMPORT, AuditOutcome.SUCCESS, actor.id,
        ResourceType.PATIENT, None, "cli", "cli-import",
    )  # fmt: skip
    async with new_uow() as uow:
        await uow.audit.add_for_each(event, [11, 12, 13])
        await uow.audit.add_for_each(event, [])
        await uow.commit()
    async with new_uow() as uow:
        page = await uow.audit.list(AuditQuery(user_id=actor.id), PageRequest())
    assert sorted((e.resource_id, e.request_id, e.action) for e in page.items) == [
        (rid, "cli-import", AuditAction.PATIENT_IMPORT) for rid in (11, 12, 13)
    ]
    assert {e.occurred_at for e in page.items} == {moment}
