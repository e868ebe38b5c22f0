"""Use cases of the shared doctor directory."""

from __future__ import annotations

from healthcare.application.paging import Page, PageRequest
from healthcare.application.ports import UnitOfWork
from healthcare.domain.entities import Doctor, DoctorData, Principal
from healthcare.domain.errors import Forbidden, NotFound
from healthcare.domain.rules import validate_doctor

NOT_YOURS = "Only the user who added this doctor, or an administrator, may change it"


class CreateDoctor:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, principal: Principal, data: DoctorData) -> Doctor:
        validate_doctor(data)
        async with self._uow as uow:
            doctor = await uow.doctors.add(principal.user_id, data)
            await uow.commit()
        return doctor


class ListDoctors:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, principal: Principal, page: PageRequest) -> Page[Doctor]:
        async with self._uow as uow:
            return await uow.doctors.list(page)


class GetDoctor:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, principal: Principal, doctor_id: int) -> Doctor:
        async with self._uow as uow:
            doctor = await uow.doctors.get(doctor_id)
        if doctor is None:
            raise NotFound("Doctor", doctor_id)
        return doctor


class UpdateDoctor:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, principal: Principal, doctor_id: int, data: DoctorData) -> Doctor:
        validate_doctor(data)
        async with self._uow as uow:
            existing = await uow.doctors.get(doctor_id)
            if existing is None:
                raise NotFound("Doctor", doctor_id)
            if not existing.may_be_changed_by(principal):
                raise Forbidden(NOT_YOURS)
            doctor = await uow.doctors.update(doctor_id, data)
            if doctor is None:  # deleted between the two statements
                raise NotFound("Doctor", doctor_id)
            await uow.commit()
        return doctor


class DeleteDoctor:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, principal: Principal, doctor_id: int) -> None:
        async with self._uow as uow:
            existing = await uow.doctors.get(doctor_id)
            if existing is None:
                raise NotFound("Doctor", doctor_id)
            if not existing.may_be_changed_by(principal):
                raise Forbidden(NOT_YOURS)
            if not await uow.doctors.delete(doctor_id):
                raise NotFound("Doctor", doctor_id)
            await uow.commit()
