"""Use cases of assigning doctors to the caller's patients."""

from __future__ import annotations

import asyncio

import pytest

from healthcare.application.paging import PageRequest
from healthcare.domain.entities import Mapping, Principal
from healthcare.domain.errors import Conflict, NotFound
from tests.unit.factories import Core, DoctorDataFactory

ALL = PageRequest()


class TestAssignDoctor:
    async def test_assigns(self, core: Core, alice: Principal, bob: Principal) -> None:
        patient = await core.add_patient(alice)
        doctor = await core.add_doctor(bob)  # any user's doctor may be assigned

        mapping = await core.container.assign_doctor()(alice, patient.id, doctor.id)

        assert mapping.patient_id == patient.id
        assert mapping.doctor == doctor
        assert mapping.id > 0
        assert mapping.created_at.tzinfo is not None

    async def test_foreign_patient_is_not_found(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        patient = await core.add_patient(alice)
        doctor = await core.add_doctor(bob)

        with pytest.raises(NotFound) as caught:
            await core.container.assign_doctor()(bob, patient.id, doctor.id)

        assert (caught.value.resource, caught.value.identifier) == ("Patient", patient.id)
        assert core.store.tables.mappings == {}

    async def test_unknown_patient(self, core: Core, alice: Principal) -> None:
        doctor = await core.add_doctor(alice)

        with pytest.raises(NotFound) as caught:
            await core.container.assign_doctor()(alice, 999, doctor.id)

        assert caught.value.resource == "Patient"

    async def test_unknown_doctor(self, core: Core, alice: Principal) -> None:
        patient = await core.add_patient(alice)

        with pytest.raises(NotFound) as caught:
            await core.container.assign_doctor()(alice, patient.id, 999)

        assert (caught.value.resource, caught.value.identifier) == ("Doctor", 999)
        assert core.store.tables.mappings == {}

    async def test_same_pair_twice_conflicts(self, core: Core, alice: Principal) -> None:
        patient = await core.add_patient(alice)
        doctor = await core.add_doctor(alice)
        first = await core.container.assign_doctor()(alice, patient.id, doctor.id)

        with pytest.raises(Conflict):
            await core.container.assign_doctor()(alice, patient.id, doctor.id)

        assert list((await core.container.list_mappings()(alice, ALL)).items) == [first]

    async def test_racing_duplicates_one_wins(self, core: Core, alice: Principal) -> None:
        patient = await core.add_patient(alice)
        doctor = await core.add_doctor(alice)

        results = await asyncio.gather(
            core.container.assign_doctor()(alice, patient.id, doctor.id),
            core.container.assign_doctor()(alice, patient.id, doctor.id),
            return_exceptions=True,
        )

        assert sorted(type(r).__name__ for r in results) == ["Conflict", "Mapping"]
        assert len(core.store.tables.mappings) == 1

    async def test_one_doctor_many_patients_and_the_reverse(
        self, core: Core, alice: Principal
    ) -> None:
        p1, p2 = await core.add_patient(alice), await core.add_patient(alice)
        d1, d2 = await core.add_doctor(alice), await core.add_doctor(alice)

        for p in (p1, p2):
            for d in (d1, d2):
                await core.container.assign_doctor()(alice, p.id, d.id)

        assert (await core.container.list_mappings()(alice, ALL)).total == 4


class TestListMappings:
    async def test_owner_sees_only_their_own(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        doctor = await core.add_doctor(alice)
        alices_patient = await core.add_patient(alice)
        bobs_patient = await core.add_patient(bob)
        alices = await core.container.assign_doctor()(alice, alices_patient.id, doctor.id)
        bobs = await core.container.assign_doctor()(bob, bobs_patient.id, doctor.id)

        assert list((await core.container.list_mappings()(alice, ALL)).items) == [alices]
        assert list((await core.container.list_mappings()(bob, ALL)).items) == [bobs]

    async def test_paging(self, core: Core, alice: Principal) -> None:
        patient = await core.add_patient(alice)
        mappings: list[Mapping] = []
        for _ in range(5):
            doctor = await core.add_doctor(alice)
            mappings.append(await core.container.assign_doctor()(alice, patient.id, doctor.id))

        page = await core.container.list_mappings()(alice, PageRequest(limit=2, offset=3))

        assert (list(page.items), page.total) == (mappings[3:], 5)

    async def test_mapping_shows_the_doctors_current_record(
        self, core: Core, alice: Principal
    ) -> None:
        patient = await core.add_patient(alice)
        doctor = await core.add_doctor(alice, specialization="Cardiology")
        await core.container.assign_doctor()(alice, patient.id, doctor.id)
        updated = await core.container.update_doctor()(
            alice, doctor.id, DoctorDataFactory.build(specialization="Neurology")
        )

        (mapping,) = (await core.container.list_patient_mappings()(alice, patient.id, ALL)).items

        assert mapping.doctor == updated
        assert mapping.doctor.specialization == "Neurology"


class TestListPatientMappings:
    async def test_lists_that_patients_mappings(self, core: Core, alice: Principal) -> None:
        patient = await core.add_patient(alice)
        other = await core.add_patient(alice)
        d1, d2 = await core.add_doctor(alice), await core.add_doctor(alice)
        m1 = await core.container.assign_doctor()(alice, patient.id, d1.id)
        m2 = await core.container.assign_doctor()(alice, patient.id, d2.id)
        await core.container.assign_doctor()(alice, other.id, d1.id)

        page = await core.container.list_patient_mappings()(alice, patient.id, ALL)

        assert (list(page.items), page.total) == ([m1, m2], 2)

    async def test_foreign_patient_is_not_found(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        patient = await core.add_patient(alice)
        doctor = await core.add_doctor(alice)
        await core.container.assign_doctor()(alice, patient.id, doctor.id)

        with pytest.raises(NotFound):
            await core.container.list_patient_mappings()(bob, patient.id, ALL)

    async def test_patient_without_mappings(self, core: Core, alice: Principal) -> None:
        patient = await core.add_patient(alice)

        page = await core.container.list_patient_mappings()(alice, patient.id, ALL)

        assert (list(page.items), page.total) == ([], 0)


class TestListPatientDoctors:
    async def test_plain_doctors(self, core: Core, alice: Principal, bob: Principal) -> None:
        patient = await core.add_patient(alice)
        d1, d2, unrelated = (
            await core.add_doctor(alice),
            await core.add_doctor(bob),
            await core.add_doctor(bob),
        )
        await core.container.assign_doctor()(alice, patient.id, d2.id)
        await core.container.assign_doctor()(alice, patient.id, d1.id)

        page = await core.container.list_patient_doctors()(alice, patient.id, ALL)

        assert page.total == 2
        assert sorted(d.id for d in page.items) == sorted([d1.id, d2.id])
        assert unrelated not in page.items
        assert set(page.items) == {d1, d2}

    async def test_paging(self, core: Core, alice: Principal) -> None:
        patient = await core.add_patient(alice)
        for _ in range(3):
            await core.container.assign_doctor()(
                alice, patient.id, (await core.add_doctor(alice)).id
            )

        page = await core.container.list_patient_doctors()(alice, patient.id, PageRequest(limit=1))

        assert (len(page.items), page.total) == (1, 3)

    async def test_foreign_patient_is_not_found(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        patient = await core.add_patient(alice)

        with pytest.raises(NotFound):
            await core.container.list_patient_doctors()(bob, patient.id, ALL)


class TestUnassignDoctor:
    async def test_deletes_the_mapping_only(self, core: Core, alice: Principal) -> None:
        patient = await core.add_patient(alice)
        doctor = await core.add_doctor(alice)
        mapping = await core.container.assign_doctor()(alice, patient.id, doctor.id)

        await core.container.unassign_doctor()(alice, mapping.id)

        assert (await core.container.list_mappings()(alice, ALL)).total == 0
        assert await core.container.get_patient()(alice, patient.id) == patient
        assert await core.container.get_doctor()(alice, doctor.id) == doctor
        again = await core.container.assign_doctor()(
            alice, patient.id, doctor.id
        )  # may be assigned anew
        assert again.id != mapping.id

    async def test_foreign_mapping_is_not_found(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        patient = await core.add_patient(alice)
        doctor = await core.add_doctor(bob)
        mapping = await core.container.assign_doctor()(alice, patient.id, doctor.id)

        with pytest.raises(NotFound) as caught:
            await core.container.unassign_doctor()(
                bob, mapping.id
            )  # even the doctor's creator may not

        assert (caught.value.resource, caught.value.identifier) == ("Mapping", mapping.id)
        assert list((await core.container.list_mappings()(alice, ALL)).items) == [mapping]

    async def test_unknown_mapping(self, core: Core, alice: Principal) -> None:
        with pytest.raises(NotFound):
            await core.container.unassign_doctor()(alice, 31337)

    async def test_patient_id_is_not_a_mapping_id(self, core: Core, alice: Principal) -> None:
        patient = await core.add_patient(alice)
        doctor = await core.add_doctor(alice)
        mapping = await core.container.assign_doctor()(alice, patient.id, doctor.id)

        with pytest.raises(NotFound):
            await core.container.unassign_doctor()(alice, patient.id)

        assert list((await core.container.list_mappings()(alice, ALL)).items) == [mapping]


class TestDeletingADoctorCascades:
    async def test_its_mappings_go_with_it(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        doomed = await core.add_doctor(alice)
        kept = await core.add_doctor(alice)
        alices_patient = await core.add_patient(alice)
        bobs_patient = await core.add_patient(bob)
        await core.container.assign_doctor()(alice, alices_patient.id, doomed.id)
        await core.container.assign_doctor()(bob, bobs_patient.id, doomed.id)
        survivor = await core.container.assign_doctor()(alice, alices_patient.id, kept.id)

        await core.container.delete_doctor()(alice, doomed.id)

        assert list((await core.container.list_mappings()(alice, ALL)).items) == [survivor]
        assert (await core.container.list_mappings()(bob, ALL)).total == 0
        assert list(
            (await core.container.list_patient_doctors()(alice, alices_patient.id, ALL)).items
        ) == [kept]
        assert await core.container.get_patient()(bob, bobs_patient.id) == bobs_patient
