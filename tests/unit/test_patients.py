"""Use cases of patient records: private to their creator."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from healthcare.adapters.persistence.memory.unit_of_work import MemoryPatientRepository
from healthcare.application.paging import PageRequest
from healthcare.domain.audit import AuditOutcome
from healthcare.domain.entities import Gender, Patient, PatientData, Principal
from healthcare.domain.errors import Forbidden, InvalidInput, NotFound, PreconditionFailed
from tests.unit.factories import Core, PatientDataFactory


def data_of(patient: object) -> dict[str, object]:
    """The client-writable fields of a patient."""
    keys = PatientData.__dataclass_fields__.keys()
    return {k: getattr(patient, k) for k in keys}


class TestCreatePatient:
    async def test_owned_by_the_caller(self, core: Core, alice: Principal) -> None:
        data = PatientDataFactory.build(gender=Gender.OTHER)

        patient = await core.container.create_patient()(alice, data)

        assert patient.created_by == alice.user_id
        assert data_of(patient) == asdict(data)
        assert patient.gender is Gender.OTHER
        assert patient.id > 0
        assert patient.created_at == patient.updated_at
        assert patient.created_at.tzinfo is not None

    async def test_ids_are_distinct(self, core: Core, alice: Principal) -> None:
        ids = {(await core.add_patient(alice)).id for _ in range(5)}

        assert len(ids) == 5

    async def test_invalid_data_is_rejected_before_anything_is_stored(
        self, core: Core, alice: Principal
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await core.add_patient(alice, name="", age=151)

        assert [e.field for e in caught.value.errors] == ["name", "age"]
        assert core.store.tables.patients == {}
        assert (await core.container.list_patients()(alice, PageRequest())).total == 0


class TestGetPatient:
    async def test_own_patient(self, core: Core, alice: Principal) -> None:
        patient = await core.add_patient(alice)

        assert await core.container.get_patient()(alice, patient.id) == patient

    async def test_unknown_id(self, core: Core, alice: Principal) -> None:
        with pytest.raises(NotFound) as caught:
            await core.container.get_patient()(alice, 999_999)

        assert (caught.value.resource, caught.value.identifier) == ("Patient", 999_999)

    async def test_another_users_patient_does_not_exist(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        patient = await core.add_patient(alice)

        with pytest.raises(NotFound) as caught:
            await core.container.get_patient()(bob, patient.id)

        assert caught.value.message == f"Patient {patient.id} was not found"

    async def test_admins_do_not_see_other_users_patients(
        self, core: Core, alice: Principal, admin: Principal
    ) -> None:
        patient = await core.add_patient(alice)

        with pytest.raises(NotFound):
            await core.container.get_patient()(admin, patient.id)


class TestListPatients:
    async def test_only_the_callers_patients(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        mine = [await core.add_patient(alice) for _ in range(3)]
        theirs = [await core.add_patient(bob) for _ in range(2)]

        alices = await core.container.list_patients()(alice, PageRequest())
        bobs = await core.container.list_patients()(bob, PageRequest())

        assert list(alices.items) == mine
        assert alices.total == 3
        assert list(bobs.items) == theirs
        assert bobs.total == 2

    async def test_empty(self, core: Core, alice: Principal) -> None:
        page = await core.container.list_patients()(alice, PageRequest())

        assert (list(page.items), page.total) == ([], 0)

    async def test_paging_by_limit_and_offset(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        mine = [await core.add_patient(alice) for _ in range(5)]
        await core.add_patient(bob)

        page = await core.container.list_patients()(alice, PageRequest(limit=2, offset=1))

        assert list(page.items) == mine[1:3]
        assert page.total == 5

    async def test_last_page_and_beyond(self, core: Core, alice: Principal) -> None:
        mine = [await core.add_patient(alice) for _ in range(5)]

        last = await core.container.list_patients()(alice, PageRequest(limit=2, offset=4))
        beyond = await core.container.list_patients()(alice, PageRequest(limit=2, offset=10))

        assert (list(last.items), last.total) == ([mine[4]], 5)
        assert (list(beyond.items), beyond.total) == ([], 5)


class TestUpdatePatient:
    async def test_replaces_the_written_fields(self, core: Core, alice: Principal) -> None:
        original = await core.add_patient(alice)
        new_data = PatientDataFactory.build(phone=None, notes="allergic to penicillin")

        updated = await core.container.update_patient()(alice, original.id, new_data)

        assert data_of(updated) == asdict(new_data)
        assert (updated.id, updated.created_by, updated.created_at) == (
            original.id,
            original.created_by,
            original.created_at,
        )
        assert updated.updated_at >= original.updated_at
        assert await core.container.get_patient()(alice, original.id) == updated

    async def test_invalid_data_changes_nothing(self, core: Core, alice: Principal) -> None:
        original = await core.add_patient(alice)

        with pytest.raises(InvalidInput) as caught:
            await core.container.update_patient()(
                alice, original.id, PatientDataFactory.build(email="nope", age=-1)
            )

        assert [e.field for e in caught.value.errors] == ["age", "email"]
        assert await core.container.get_patient()(alice, original.id) == original

    async def test_unknown_id(self, core: Core, alice: Principal) -> None:
        with pytest.raises(NotFound):
            await core.container.update_patient()(alice, 12345, PatientDataFactory.build())

    async def test_another_users_patient(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        original = await core.add_patient(alice)

        with pytest.raises(NotFound):
            await core.container.update_patient()(bob, original.id, PatientDataFactory.build())

        assert await core.container.get_patient()(alice, original.id) == original


class TestPatchPatient:
    async def test_changes_only_the_fields_given(self, core: Core, alice: Principal) -> None:
        original = await core.add_patient(alice, phone="123", notes="keep")

        patched = await core.container.patch_patient()(
            alice, original.id, {"age": 77, "phone": None}
        )

        assert (patched.age, patched.phone, patched.notes) == (77, None, "keep")
        assert patched.version == original.version + 1

    async def test_every_bad_change_at_once_and_nothing_stored(
        self, core: Core, alice: Principal
    ) -> None:
        original = await core.add_patient(alice)

        with pytest.raises(InvalidInput) as caught:
            await core.container.patch_patient()(
                alice, original.id, {"name": None, "age": 500, "x": 1}
            )

        assert {e.field for e in caught.value.errors} == {"name", "age", "x"}
        with pytest.raises(InvalidInput) as caught:
            await core.container.patch_patient()(
                alice, original.id, {"age": 500, "gender": "robot"}
            )
        assert {e.field for e in caught.value.errors} == {"age", "gender"}
        assert await core.container.get_patient()(alice, original.id) == original

    async def test_writes_without_reading_the_record_first(
        self, core: Core, alice: Principal, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A read before the write would leave a window for another change to be overwritten.
        original = await core.add_patient(alice, phone=None, notes="from elsewhere")

        async def no_read(*_: object) -> Patient | None:
            raise AssertionError("PATCH read the record")

        monkeypatch.setattr(MemoryPatientRepository, "get", no_read)
        patched = await core.container.patch_patient()(alice, original.id, {"phone": "555"})

        assert (patched.phone, patched.notes, patched.version) == ("555", "from elsewhere", 2)

    async def test_bad_input_on_a_missing_or_stale_patient_names_that_first(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        original = await core.add_patient(alice)
        with pytest.raises(NotFound):
            await core.container.patch_patient()(bob, original.id, {"age": 500})
        with pytest.raises(PreconditionFailed):
            await core.container.patch_patient()(
                alice, original.id, {"age": 500}, expected_version=7
            )
        with pytest.raises(InvalidInput):
            await core.container.patch_patient()(
                alice, original.id, {"age": 500}, expected_version=1
            )

    async def test_with_an_expected_version_a_stale_one_is_refused(
        self, core: Core, alice: Principal
    ) -> None:
        original = await core.add_patient(alice)
        await core.container.patch_patient()(alice, original.id, {"age": 1})

        with pytest.raises(PreconditionFailed) as caught:
            await core.container.patch_patient()(alice, original.id, {"age": 2}, expected_version=1)

        assert caught.value.current_version == 2
        assert (await core.container.get_patient()(alice, original.id)).age == 1

    async def test_another_users_patient_is_not_found(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        original = await core.add_patient(alice)
        with pytest.raises(NotFound):
            await core.container.patch_patient()(bob, original.id, {"age": 2})


class TestDeletePatient:
    async def test_deletes(self, core: Core, alice: Principal) -> None:
        kept = await core.add_patient(alice)
        doomed = await core.add_patient(alice)

        await core.container.delete_patient()(alice, doomed.id)

        with pytest.raises(NotFound):
            await core.container.get_patient()(alice, doomed.id)
        assert list((await core.container.list_patients()(alice, PageRequest())).items) == [kept]

    async def test_twice_is_not_found(self, core: Core, alice: Principal) -> None:
        patient = await core.add_patient(alice)
        await core.container.delete_patient()(alice, patient.id)

        with pytest.raises(NotFound):
            await core.container.delete_patient()(alice, patient.id)

    async def test_another_users_patient(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        patient = await core.add_patient(alice)

        with pytest.raises(NotFound):
            await core.container.delete_patient()(bob, patient.id)

        assert await core.container.get_patient()(alice, patient.id) == patient

    async def test_removes_its_mappings_only(self, core: Core, alice: Principal) -> None:
        doctor = await core.add_doctor(alice)
        doomed = await core.add_patient(alice)
        kept = await core.add_patient(alice)
        await core.container.assign_doctor()(alice, doomed.id, doctor.id)
        kept_mapping = await core.container.assign_doctor()(alice, kept.id, doctor.id)

        await core.container.delete_patient()(alice, doomed.id)

        mappings = await core.container.list_mappings()(alice, PageRequest())
        assert [m.id for m in mappings.items] == [kept_mapping.id]
        assert mappings.total == 1
        assert await core.container.get_doctor()(alice, doctor.id) == doctor  # the doctor stays


class TestAnotherOwnersPatients:
    """Only an administrator (the admin interface) may name another owner."""

    async def test_a_user_may_not_name_another_owner(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        patient = await core.add_patient(bob)
        uses = core.container
        calls = [
            uses.get_patient()(alice, patient.id, owner_id=bob.user_id),
            uses.list_patients()(alice, PageRequest(), owner_id=bob.user_id),
            uses.list_patients()(alice, PageRequest(), every_owner=True),
            uses.create_patient()(alice, PatientDataFactory.build(), owner_id=bob.user_id),
            uses.delete_patient()(alice, patient.id, owner_id=bob.user_id),
        ]
        for call in calls:
            with pytest.raises(Forbidden):
                await call
        assert {e.outcome for e in core.audit_events()[-5:]} == {AuditOutcome.DENIED}
        assert await uses.get_patient()(bob, patient.id) == patient

    async def test_an_administrator_works_on_any_owners_patients(
        self, core: Core, admin: Principal, alice: Principal, bob: Principal
    ) -> None:
        theirs = await core.add_patient(bob)
        await core.add_patient(alice)
        uses = core.container

        assert await uses.get_patient()(admin, theirs.id, owner_id=bob.user_id) == theirs
        everyone = await uses.list_patients()(admin, PageRequest(), every_owner=True)
        assert everyone.total == 2
        bobs = await uses.list_patients()(admin, PageRequest(), owner_id=bob.user_id)
        assert [p.id for p in bobs.items] == [theirs.id]
        # The actor of the audit trail is the administrator, not the owner.
        assert core.audit_events()[-1].user_id == admin.user_id
