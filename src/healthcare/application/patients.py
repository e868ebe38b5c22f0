"""Use cases of patient records, each private to the user who created it."""

from __future__ import annotations

from healthcare.application.audit import Auditor
from healthcare.application.paging import Page, PageRequest
from healthcare.application.ports import UnitOfWork
from healthcare.domain.audit import AuditAction, ResourceType
from healthcare.domain.entities import Patient, PatientData, Principal
from healthcare.domain.errors import NotFound
from healthcare.domain.rules import validate_patient

PATIENT = ResourceType.PATIENT


class CreatePatient:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(self, principal: Principal, data: PatientData) -> Patient:
        async with self._audit.of(principal, AuditAction.PATIENT_CREATE, PATIENT) as audit:
            validate_patient(data)
            async with self._uow as uow:
                audit.commit_with_next_write(uow)
                patient = await uow.patients.add(principal.user_id, data)
                await uow.commit()
        return patient


class ListPatients:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(self, principal: Principal, page: PageRequest) -> Page[Patient]:
        async with (
            self._audit.of(principal, AuditAction.PATIENT_LIST, PATIENT),
            self._uow as uow,
        ):
            return await uow.patients.list(principal.user_id, page)


class GetPatient:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(self, principal: Principal, patient_id: int) -> Patient:
        async with (
            self._audit.of(principal, AuditAction.PATIENT_READ, PATIENT, patient_id),
            self._uow as uow,
        ):
            patient = await uow.patients.get(principal.user_id, patient_id)
            if patient is None:
                raise NotFound("Patient", patient_id)
        return patient


class UpdatePatient:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(self, principal: Principal, patient_id: int, data: PatientData) -> Patient:
        action = AuditAction.PATIENT_UPDATE
        async with self._audit.of(principal, action, PATIENT, patient_id) as audit:
            validate_patient(data)
            async with self._uow as uow:
                audit.commit_with_next_write(uow)
                patient = await uow.patients.update(principal.user_id, patient_id, data)
                if patient is None:
                    raise NotFound("Patient", patient_id)
                await uow.commit()
        return patient


class DeletePatient:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(self, principal: Principal, patient_id: int) -> None:
        action = AuditAction.PATIENT_DELETE
        async with (
            self._audit.of(principal, action, PATIENT, patient_id) as audit,
            self._uow as uow,
        ):
            audit.commit_with_next_write(uow)
            if not await uow.patients.delete(principal.user_id, patient_id):
                raise NotFound("Patient", patient_id)
            await uow.commit()
