"""Use cases of patient records, each private to the user who created it."""

from __future__ import annotations

from collections.abc import Mapping

from healthcare.application.audit import Auditor
from healthcare.application.paging import Page, PageRequest
from healthcare.application.ports import UnitOfWork
from healthcare.domain.audit import AuditAction, ResourceType
from healthcare.domain.entities import Patient, PatientData, Principal
from healthcare.domain.errors import Forbidden, InvalidInput, NotFound, PreconditionFailed
from healthcare.domain.listing import NO_PATIENT_FILTER, PatientFilter
from healthcare.domain.rules import patient_changes, validate_patient

PATIENT = ResourceType.PATIENT
NOT_AN_ADMINISTRATOR = "Only an administrator may work on another user's patients"


def records_owner(principal: Principal, owner_id: int | None) -> int:
    """Whose patients a call works on: the caller's own, unless an administrator (the admin
    interface, the command line) names another owner. The caller stays the actor in the
    audit trail."""
    if owner_id is None or owner_id == principal.user_id:
        return principal.user_id
    if not principal.is_admin:
        raise Forbidden(NOT_AN_ADMINISTRATOR)
    return owner_id


def records_scope(principal: Principal, owner_id: int | None, every_owner: bool) -> int | None:
    """As ``records_owner``, and None for every owner's records: an administrator's
    ``every_owner`` with no owner named (the command line knows a patient by id alone).

    The API's reads go through here on every request: the caller's own records cost one
    comparison more than ``records_owner`` and no call of it.
    """
    if owner_id is None:
        if not every_owner:
            return principal.user_id
        if not principal.is_admin:
            raise Forbidden(NOT_AN_ADMINISTRATOR)
        return None
    return records_owner(principal, owner_id)


class CreatePatient:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self, principal: Principal, data: PatientData, *, owner_id: int | None = None
    ) -> Patient:
        async with self._audit.of(principal, AuditAction.PATIENT_CREATE, PATIENT) as audit:
            owner = records_owner(principal, owner_id)
            validate_patient(data)
            async with self._uow as uow:
                if owner != principal.user_id and await uow.users.get(owner) is None:
                    raise InvalidInput.single("owner", "is not a known user")
                audit.commit_with_next_write(uow)
                patient = await uow.patients.add(owner, data)
                await uow.commit()
        return patient


class ListPatients:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self,
        principal: Principal,
        page: PageRequest,
        where: PatientFilter = NO_PATIENT_FILTER,
        *,
        owner_id: int | None = None,
        every_owner: bool = False,
    ) -> Page[Patient]:
        """The caller's patients; an administrator may ask for another owner's, or (with
        ``every_owner`` and no ``owner_id``) everyone's."""
        async with self._audit.of(principal, AuditAction.PATIENT_LIST, PATIENT):
            owner = records_scope(principal, owner_id, every_owner)
            async with self._uow as uow:
                return await uow.patients.list(owner, page, where)


class GetPatient:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self,
        principal: Principal,
        patient_id: int,
        *,
        owner_id: int | None = None,
        every_owner: bool = False,
    ) -> Patient:
        """The caller's patient; an administrator may name its owner, or read it whoever
        owns it (``every_owner``)."""
        async with self._audit.of(principal, AuditAction.PATIENT_READ, PATIENT, patient_id):
            owner = records_scope(principal, owner_id, every_owner)
            async with self._uow as uow:
                if owner is None:
                    patient = await uow.patients.find(patient_id)
                else:
                    patient = await uow.patients.get(owner, patient_id)
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
        owner_id: int | None = None,
    ) -> Patient:
        action = AuditAction.PATIENT_UPDATE
        async with self._audit.of(principal, action, PATIENT, patient_id) as audit:
            owner = records_owner(principal, owner_id)
            validate_patient(data)
            async with self._uow as uow:
                audit.commit_with_next_write(uow)
                patient = await uow.patients.update(owner, patient_id, data, expected_version)
                if patient is None:
                    raise NotFound("Patient", patient_id)
                await uow.commit()
        return patient


class PatchPatient:
    """Change some fields of a patient's record, audited as an update.

    ``changes`` maps field names to new values: a field absent from it is kept, None clears
    an optional one. The changes are checked field by field (a patient has no rule that
    relates two fields) and written in one statement, with the version check when
    ``expected_version`` is given: the record is not read first.
    """

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
            try:
                values = patient_changes(changes)
            except InvalidInput:
                # A missing patient, then a stale version, is named before bad input.
                await self._refuse_unreachable(principal, patient_id, expected_version)
                raise
            async with self._uow as uow:
                audit.commit_with_next_write(uow)
                patient = await uow.patients.patch(
                    principal.user_id, patient_id, values, expected_version
                )
                if patient is None:
                    raise NotFound("Patient", patient_id)
                await uow.commit()
        return patient

    async def _refuse_unreachable(
        self, principal: Principal, patient_id: int, expected_version: int | None
    ) -> None:
        async with self._uow as uow:
            current = await uow.patients.get(principal.user_id, patient_id)
        if current is None:
            raise NotFound("Patient", patient_id)
        if expected_version is not None and current.version != expected_version:
            raise PreconditionFailed("Patient", patient_id, current.version)


class DeletePatient:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self,
        principal: Principal,
        patient_id: int,
        *,
        expected_version: int | None = None,
        owner_id: int | None = None,
    ) -> None:
        action = AuditAction.PATIENT_DELETE
        async with self._audit.of(principal, action, PATIENT, patient_id) as audit:
            owner = records_owner(principal, owner_id)
            async with self._uow as uow:
                audit.commit_with_next_write(uow)
                if not await uow.patients.delete(owner, patient_id, expected_version):
                    raise NotFound("Patient", patient_id)
                await uow.commit()
