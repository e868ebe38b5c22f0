"""Use cases of administrators over every owner's records (the command line, the admin).

The owner-scoped use cases (patients.py, mappings.py) act for the caller as owner; these act
on any owner's records, for administrators only, audited with the administrator as actor
and the same actions as their owner-scoped twins.
"""

from __future__ import annotations

from healthcare.application.audit import Auditor
from healthcare.application.paging import Page, PageRequest
from healthcare.application.ports import UnitOfWork, UserRepository
from healthcare.application.users import refuse_unless_admin
from healthcare.domain.audit import AuditAction, Origin, ResourceType
from healthcare.domain.entities import Mapping, Patient, Principal
from healthcare.domain.errors import Forbidden, NotFound
from healthcare.domain.listing import NO_PATIENT_FILTER, PatientFilter

PATIENT, MAPPING = ResourceType.PATIENT, ResourceType.MAPPING


async def existing_owner(users: UserRepository, owner_id: int) -> None:
    if await users.get(owner_id) is None:
        raise NotFound("User", owner_id)


class IdentifyAdministrator:
    """The principal of an active administrator named by username or email: who acts, for
    entrypoints that have no sign-in (the command line's ``--as``). Not audited itself;
    every use case it then calls is."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def __call__(self, username_or_email: str, origin: Origin) -> Principal:
        async with self._uow as uow:
            user = await uow.users.find_by_login(username_or_email)
        if user is None or not user.is_active or not user.is_admin:
            raise Forbidden(f"{username_or_email!r} is not an active administrator")
        return Principal(user.id, is_admin=True, origin=origin)


class AdminListPatients:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self,
        principal: Principal,
        owner_id: int,
        page: PageRequest,
        where: PatientFilter = NO_PATIENT_FILTER,
    ) -> Page[Patient]:
        async with self._audit.of(principal, AuditAction.PATIENT_LIST, PATIENT):
            refuse_unless_admin(principal)
            async with self._uow as uow:
                await existing_owner(uow.users, owner_id)
                return await uow.patients.list(owner_id, page, where)


class AdminGetPatient:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(self, principal: Principal, patient_id: int) -> Patient:
        action = AuditAction.PATIENT_READ
        async with self._audit.of(principal, action, PATIENT, patient_id):
            refuse_unless_admin(principal)
            async with self._uow as uow:
                patient = await uow.patients.find(patient_id)
            if patient is None:
                raise NotFound("Patient", patient_id)
            return patient


class AdminListPatientMappings:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self, principal: Principal, patient_id: int, page: PageRequest
    ) -> Page[Mapping]:
        action = AuditAction.MAPPING_LIST_PATIENT
        async with self._audit.of(principal, action, PATIENT, patient_id):
            refuse_unless_admin(principal)
            async with self._uow as uow:
                patient = await uow.patients.find(patient_id)
                found = None
                if patient is not None:
                    found = await uow.mappings.list_for_patient(
                        patient.created_by, patient_id, page
                    )
            if found is None:
                raise NotFound("Patient", patient_id)
            return found


class AdminAssignDoctor:
    """Assign a doctor to any owner's patient."""

    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(self, principal: Principal, patient_id: int, doctor_id: int) -> Mapping:
        async with self._audit.of(principal, AuditAction.MAPPING_CREATE, MAPPING) as audit:
            refuse_unless_admin(principal)
            async with self._uow as uow:
                patient = await uow.patients.find(patient_id)
                if patient is None:
                    raise NotFound("Patient", patient_id)
                audit.commit_with_next_write(uow)
                mapping = await uow.mappings.add(patient.created_by, patient_id, doctor_id)
                await uow.commit()
        return mapping
