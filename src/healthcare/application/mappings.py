"""Use cases of assigning doctors to the caller's patients.

An administrator may name another owner (``owner_id``), or act on a patient whoever owns it
(``every_owner``): the admin interface and the command line call these same use cases.
"""

from __future__ import annotations

from healthcare.application.audit import Auditor
from healthcare.application.paging import Page, PageRequest
from healthcare.application.patients import records_owner, records_scope
from healthcare.application.ports import UnitOfWork
from healthcare.domain.audit import AuditAction, ResourceType
from healthcare.domain.entities import Doctor, Mapping, Principal
from healthcare.domain.errors import NotFound
from healthcare.domain.listing import NO_MAPPING_FILTER, MappingFilter

PATIENT, MAPPING = ResourceType.PATIENT, ResourceType.MAPPING


async def _owner_of(uow: UnitOfWork, patient_id: int) -> int:
    """Who owns the patient, for an administrator acting on it whoever owns it."""
    patient = await uow.patients.find(patient_id)
    if patient is None:
        raise NotFound("Patient", patient_id)
    return patient.created_by


class AssignDoctorToPatient:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self,
        principal: Principal,
        patient_id: int,
        doctor_id: int,
        *,
        owner_id: int | None = None,
        every_owner: bool = False,
    ) -> Mapping:
        async with self._audit.of(principal, AuditAction.MAPPING_CREATE, MAPPING) as audit:
            owner = records_scope(principal, owner_id, every_owner)
            async with self._uow as uow:
                if owner is None:
                    owner = await _owner_of(uow, patient_id)
                audit.commit_with_next_write(uow)
                mapping = await uow.mappings.add(owner, patient_id, doctor_id)
                await uow.commit()
        return mapping


class ListMappings:
    """Every mapping of the caller's patients."""

    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self, principal: Principal, page: PageRequest, where: MappingFilter = NO_MAPPING_FILTER
    ) -> Page[Mapping]:
        async with (
            self._audit.of(principal, AuditAction.MAPPING_LIST, MAPPING),
            self._uow as uow,
        ):
            return await uow.mappings.list_for_owner(principal.user_id, page, where)


class ListPatientMappings:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self,
        principal: Principal,
        patient_id: int,
        page: PageRequest,
        *,
        owner_id: int | None = None,
        every_owner: bool = False,
    ) -> Page[Mapping]:
        action = AuditAction.MAPPING_LIST_PATIENT
        async with self._audit.of(principal, action, PATIENT, patient_id):
            owner = records_scope(principal, owner_id, every_owner)
            async with self._uow as uow:
                if owner is None:
                    owner = await _owner_of(uow, patient_id)
                mappings = await uow.mappings.list_for_patient(owner, patient_id, page)
            if mappings is None:
                raise NotFound("Patient", patient_id)
            return mappings


class ListPatientDoctors:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self, principal: Principal, patient_id: int, page: PageRequest
    ) -> Page[Doctor]:
        async with (
            self._audit.of(principal, AuditAction.PATIENT_DOCTORS, PATIENT, patient_id),
            self._uow as uow,
        ):
            doctors = await uow.mappings.doctors_of_patient(principal.user_id, patient_id, page)
            if doctors is None:
                raise NotFound("Patient", patient_id)
            return doctors


class UnassignDoctor:
    """Delete a mapping by its own id; only the owner of its patient may."""

    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self, principal: Principal, mapping_id: int, *, owner_id: int | None = None
    ) -> None:
        action = AuditAction.MAPPING_DELETE
        async with self._audit.of(principal, action, MAPPING, mapping_id) as audit:
            owner = records_owner(principal, owner_id)
            async with self._uow as uow:
                if await uow.mappings.get(owner, mapping_id) is None:
                    raise NotFound("Mapping", mapping_id)
                audit.commit_with_next_write(uow)
                if not await uow.mappings.delete(mapping_id):
                    raise NotFound("Mapping", mapping_id)
                await uow.commit()
