"""Use cases of the shared doctor directory."""

from __future__ import annotations

from collections.abc import Mapping

from healthcare.application.paging import Page, PageRequest
from healthcare.application.ports import UnitOfWork
from healthcare.domain.entities import Doctor, DoctorData, Principal
from healthcare.domain.errors import Forbidden, NotFound, PreconditionFailed
from healthcare.domain.listing import NO_DOCTOR_FILTER, DoctorFilter
from healthcare.domain.rules import patch_doctor, validate_doctor

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

    async def __call__(
        self, principal: Principal, page: PageRequest, where: DoctorFilter = NO_DOCTOR_FILTER
    ) -> Page[Doctor]:
        async with self._uow as uow:
            return await uow.doctors.list(page, where)


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
    """Replace a doctor's record; with ``expected_version`` (If-Match), only at that version."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(
        self,
        principal: Principal,
        doctor_id: int,
        data: DoctorData,
        *,
        expected_version: int | None = None,
    ) -> Doctor:
        validate_doctor(data)
        async with self._uow as uow:
            existing = await _changeable(uow, principal, doctor_id)
            if expected_version is not None and existing.version != expected_version:
                raise PreconditionFailed("Doctor", doctor_id, existing.version)
            doctor = await uow.doctors.update(doctor_id, data, expected_version)
            if doctor is None:  # deleted between the two statements
                raise NotFound("Doctor", doctor_id)
            await uow.commit()
        return doctor


class PatchDoctor:
    """Change some fields of a doctor's record (as PatchPatient; creator or administrator)."""

    ATTEMPTS = 3

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(
        self,
        principal: Principal,
        doctor_id: int,
        changes: Mapping[str, object],
        *,
        expected_version: int | None = None,
    ) -> Doctor:
        for attempt in range(1, self.ATTEMPTS + 1):
            async with self._uow as uow:
                current = await _changeable(uow, principal, doctor_id)
                if expected_version is not None and current.version != expected_version:
                    raise PreconditionFailed("Doctor", doctor_id, current.version)
                data = patch_doctor(current.data(), changes)
                try:
                    doctor = await uow.doctors.update(doctor_id, data, current.version)
                except PreconditionFailed:
                    if expected_version is not None or attempt == self.ATTEMPTS:
                        raise
                    continue
                if doctor is None:
                    raise NotFound("Doctor", doctor_id)
                await uow.commit()
                return doctor
        raise AssertionError("unreachable: the last attempt returns or raises")


async def _changeable(uow: UnitOfWork, principal: Principal, doctor_id: int) -> Doctor:
    """The doctor, if ``principal`` may change it: NotFound, else Forbidden."""
    existing = await uow.doctors.get(doctor_id)
    if existing is None:
        raise NotFound("Doctor", doctor_id)
    if not existing.may_be_changed_by(principal):
        raise Forbidden(NOT_YOURS)
    return existing


class DeleteDoctor:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(
        self, principal: Principal, doctor_id: int, *, expected_version: int | None = None
    ) -> None:
        async with self._uow as uow:
            existing = await _changeable(uow, principal, doctor_id)
            if expected_version is not None and existing.version != expected_version:
                raise PreconditionFailed("Doctor", doctor_id, existing.version)
            if not await uow.doctors.delete(doctor_id, expected_version):
                raise NotFound("Doctor", doctor_id)
            await uow.commit()
