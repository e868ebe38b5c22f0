"""Use cases of patient records, each private to the user who created it."""

from __future__ import annotations

from collections.abc import Mapping

from healthcare.application.audit import Auditor
from healthcare.application.paging import Page, PageRequest
from healthcare.application.ports import UnitOfWork
from healthcare.domain.audit import AuditAction, ResourceType
from healthcare.domain.entities import Patient, PatientData, Principal
from healthcare.domain.errors import NotFound, PreconditionFailed
from healthcare.domain.listing import NO_PATIENT_FILTER, PatientFilter
from healthcare.domain.rules import patch_patient, validate_patient

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

    async def __call__(
        self, principal: Principal, page: PageRequest, where: PatientFilter = NO_PATIENT_FILTER
    ) -> Page[Patient]:
        async with (
            self._audit.of(principal, AuditAction.PATIENT_LIST, PATIENT),
            self._uow as uow,
        ):
            return await uow.patients.list(principal.user_id, page, where)


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
    """Replace a patient's record; with ``expected_version`` (If-Match), only at that version."""

    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self,
        principal: Principal,
        patient_id: int,
        data: PatientData,
        *,
        expected_version: int | None = None,
    ) -> Patient:
        action = AuditAction.PATIENT_UPDATE
        async with self._audit.of(principal, action, PATIENT, patient_id) as audit:
            validate_patient(data)
            async with self._uow as uow:
                audit.commit_with_next_write(uow)
                patient = await uow.patients.update(
                    principal.user_id, patient_id, data, expected_version
                )
                if patient is None:
                    raise NotFound("Patient", patient_id)
                await uow.commit()
        return patient


class PatchPatient:
    """Change some fields of a patient's record, audited as an update.

    ``changes`` maps field names to new values: a field absent from it is kept, None clears
    an optional one. The merged record is held to the rules of a whole one, and written only
    at the version it was read at, in one statement: if another change came between, the
    merge is done again on the newer record (or, with ``expected_version``, refused).
    """

    ATTEMPTS = 3

    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self,
        principal: Principal,
        patient_id: int,
        changes: Mapping[str, object],
        *,
        expected_version: int | None = None,
    ) -> Patient:
        action = AuditAction.PATIENT_UPDATE
        async with self._audit.of(principal, action, PATIENT, patient_id) as audit:
            for attempt in range(1, self.ATTEMPTS + 1):
                async with self._uow as uow:
                    current = await uow.patients.get(principal.user_id, patient_id)
                    if current is None:
                        raise NotFound("Patient", patient_id)
                    if expected_version is not None and current.version != expected_version:
                        raise PreconditionFailed("Patient", patient_id, current.version)
                    data = patch_patient(current.data(), changes)
                    audit.commit_with_next_write(uow)
                    try:
                        patient = await uow.patients.update(
                            principal.user_id, patient_id, data, current.version
                        )
                    except PreconditionFailed:
                        if expected_version is not None or attempt == self.ATTEMPTS:
                            raise
                        continue  # changed since it was read: merge into the newer record
                    if patient is None:
                        raise NotFound("Patient", patient_id)
                    await uow.commit()
                    return patient
        raise AssertionError("unreachable: the last attempt returns or raises")


class DeletePatient:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self, principal: Principal, patient_id: int, *, expected_version: int | None = None
    ) -> None:
        action = AuditAction.PATIENT_DELETE
        async with (
            self._audit.of(principal, action, PATIENT, patient_id) as audit,
            self._uow as uow,
        ):
            audit.commit_with_next_write(uow)
            if not await uow.patients.delete(principal.user_id, patient_id, expected_version):
                raise NotFound("Patient", patient_id)
            await uow.commit()
