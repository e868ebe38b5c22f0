"""Use cases of the shared doctor directory."""

from __future__ import annotations

from dataclasses import asdict, replace

import pytest

from healthcare.application.doctors import NOT_YOURS
from healthcare.application.paging import PageRequest
from healthcare.domain.entities import DoctorData, Principal
from healthcare.domain.errors import Forbidden, InvalidInput, NotFound
from tests.unit.factories import Core, DoctorDataFactory


def data_of(doctor: object) -> dict[str, object]:
    return {k: getattr(doctor, k) for k in DoctorData.__dataclass_fields__}


class TestCreateDoctor:
    async def test_records_the_creator(self, core: Core, alice: Principal) -> None:
        data = DoctorDataFactory.build()

        doctor = await core.container.create_doctor()(alice, data)

        assert doctor.created_by == alice.user_id
        assert data_of(doctor) == asdict(data)
        assert doctor.created_at == doctor.updated_at

    async def test_invalid_data_is_rejected_before_anything_is_stored(
        self, core: Core, alice: Principal
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            await core.add_doctor(alice, specialization=" ", email="x")

        assert [e.field for e in caught.value.errors] == ["specialization", "email"]
        assert core.store.tables.doctors == {}


class TestReadDoctors:
    async def test_everyone_reads_every_doctor(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        by_alice = await core.add_doctor(alice)
        by_bob = await core.add_doctor(bob)

        for reader in (alice, bob):
            page = await core.container.list_doctors()(reader, PageRequest())
            assert list(page.items) == [by_alice, by_bob]
            assert page.total == 2
            assert await core.container.get_doctor()(reader, by_alice.id) == by_alice

    async def test_paging(self, core: Core, alice: Principal) -> None:
        doctors = [await core.add_doctor(alice) for _ in range(4)]

        page = await core.container.list_doctors()(alice, PageRequest(limit=2, offset=2))

        assert (list(page.items), page.total) == (doctors[2:], 4)

    async def test_unknown_id(self, core: Core, alice: Principal) -> None:
        with pytest.raises(NotFound) as caught:
            await core.container.get_doctor()(alice, 4040)

        assert caught.value.message == "Doctor 4040 was not found"


class TestUpdateDoctor:
    async def test_by_its_creator(self, core: Core, alice: Principal) -> None:
        doctor = await core.add_doctor(alice)
        new_data = DoctorDataFactory.build(email=None)

        updated = await core.container.update_doctor()(alice, doctor.id, new_data)

        assert data_of(updated) == asdict(new_data)
        assert (updated.id, updated.created_by, updated.created_at) == (
            doctor.id,
            alice.user_id,
            doctor.created_at,
        )
        assert await core.container.get_doctor()(alice, doctor.id) == updated

    async def test_by_an_admin(self, core: Core, alice: Principal, admin: Principal) -> None:
        doctor = await core.add_doctor(alice)

        updated = await core.container.update_doctor()(
            admin, doctor.id, DoctorDataFactory.build(name="X")
        )

        assert updated.name == "X"
        assert updated.created_by == alice.user_id  # the creator does not change

    async def test_by_anyone_else_is_forbidden(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        doctor = await core.add_doctor(alice)

        with pytest.raises(Forbidden) as caught:
            await core.container.update_doctor()(bob, doctor.id, DoctorDataFactory.build())

        assert caught.value.message == NOT_YOURS
        assert await core.container.get_doctor()(bob, doctor.id) == doctor

    async def test_unknown_id(self, core: Core, admin: Principal) -> None:
        with pytest.raises(NotFound):
            await core.container.update_doctor()(admin, 777, DoctorDataFactory.build())

    async def test_invalid_data(self, core: Core, alice: Principal) -> None:
        doctor = await core.add_doctor(alice)

        with pytest.raises(InvalidInput):
            await core.container.update_doctor()(alice, doctor.id, DoctorDataFactory.build(name=""))

        assert await core.container.get_doctor()(alice, doctor.id) == doctor


class TestDeleteDoctor:
    async def test_by_its_creator(self, core: Core, alice: Principal) -> None:
        doctor = await core.add_doctor(alice)

        await core.container.delete_doctor()(alice, doctor.id)

        with pytest.raises(NotFound):
            await core.container.get_doctor()(alice, doctor.id)
        assert (await core.container.list_doctors()(alice, PageRequest())).total == 0

    async def test_by_an_admin(self, core: Core, alice: Principal, admin: Principal) -> None:
        doctor = await core.add_doctor(alice)

        await core.container.delete_doctor()(admin, doctor.id)

        assert core.store.tables.doctors == {}

    async def test_by_anyone_else_is_forbidden(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        doctor = await core.add_doctor(alice)

        with pytest.raises(Forbidden):
            await core.container.delete_doctor()(bob, doctor.id)

        assert await core.container.get_doctor()(bob, doctor.id) == doctor

    async def test_unknown_id(self, core: Core, admin: Principal) -> None:
        with pytest.raises(NotFound):
            await core.container.delete_doctor()(admin, 777)

    async def test_doctor_without_creator_only_admins(
        self, core: Core, alice: Principal, admin: Principal
    ) -> None:
        # created_by is None once the creating account is gone (or for seeded data).
        doctor = await core.add_doctor(alice)
        core.store.tables.doctors[doctor.id] = replace(doctor, created_by=None)

        with pytest.raises(Forbidden):
            await core.container.delete_doctor()(alice, doctor.id)
        await core.container.delete_doctor()(admin, doctor.id)

        assert core.store.tables.doctors == {}
