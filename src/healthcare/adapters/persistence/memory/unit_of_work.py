"""Repositories over plain dictionaries, with transactions by snapshot.

One lock per store serialises units of work, so racing requests behave as they would
against a database with unique constraints: one wins, the rest see the winner. A unit reads
the store's own tables and copies a table only when it first writes to it (copy on write):
a unit that reads copies nothing, and a commit swaps in the tables the unit changed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from healthcare.adapters.lookalikes import LOOKALIKE_TAKEN, login_name_keys
from healthcare.application.paging import Page, PageRequest
from healthcare.domain.audit import AuditEvent, AuditQuery
from healthcare.domain.entities import (
    Doctor,
    DoctorData,
    Mapping,
    NewUser,
    Patient,
    PatientChanges,
    PatientData,
    RefreshSession,
    User,
)
from healthcare.domain.errors import Conflict, NotFound, PreconditionFailed
from healthcare.domain.listing import (
    NO_DOCTOR_FILTER,
    NO_MAPPING_FILTER,
    NO_PATIENT_FILTER,
    NO_USER_FILTER,
    DoctorFilter,
    MappingFilter,
    PatientFilter,
    SortKey,
    UserFilter,
    search_key,
)
from healthcare.domain.rules import identity_key

T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Tables:
    users: dict[int, User] = field(default_factory=dict)
    patients: dict[int, Patient] = field(default_factory=dict)
    doctors: dict[int, Doctor] = field(default_factory=dict)
    # mapping id -> (patient id, doctor id, created_at)
    mappings: dict[int, tuple[int, int, datetime]] = field(default_factory=dict)
    refresh_sessions: dict[str, RefreshSession] = field(default_factory=dict)
    audit_events: dict[int, AuditEvent] = field(default_factory=dict)


class _Workspace:
    """The tables one unit of work sees: the store's, until it writes to one of them."""

    def __init__(self, tables: _Tables, store: MemoryStore) -> None:
        self.tables = tables
        self._private: set[str] = set()  # the tables this unit has copied to write to
        self._store = store
        # The event given to commit_with_next_write: waiting for the next write, then
        # written with it (attached), then committed.
        self.final: AuditEvent | None = None
        self.final_attached = False
        self.final_committed = False

    def share(self, tables: _Tables) -> None:
        """See ``tables`` (the store's), and copy none of them yet."""
        self.tables = _Tables(**vars(tables))
        self._private = set()

    def writable(self, name: str) -> dict[Any, Any]:
        """The unit's own copy of a table, made at its first write. (Entities are
        immutable, so copying the dict is enough to isolate the unit.)"""
        table: dict[Any, Any] = getattr(self.tables, name)
        if name not in self._private:
            table = dict(table)
            setattr(self.tables, name, table)
            self._private.add(name)
        return table

    def wrote(self, row_id: int | None) -> None:
        """Every write calls this: with the id of the row it changed, or None if it changed
        none or was refused."""
        final = self.final
        if self.final_attached:
            raise RuntimeError("Nothing may be written after a unit's final write")
        if final is None:
            return
        if row_id is None:
            self.final = None
            return
        if final.resource_id is None:
            final = replace(final, resource_id=row_id)
        event_id = self._store.next_id()
        self.writable("audit_events")[event_id] = replace(final, id=event_id)
        self.final_attached = True


class MemoryStore:
    """The data of one in-memory database, shared by every unit of work made from it."""

    def __init__(self) -> None:
        self.tables = _Tables()
        self.lock = asyncio.Lock()
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        return next(self._ids)


def _page(items: Iterable[T], page: PageRequest, key: Callable[[T], int]) -> Page[T]:
    ordered = sorted(items, key=key)
    return Page(ordered[page.offset : page.offset + page.limit], len(ordered))


def _ordered(
    items: Iterable[T],
    ordering: tuple[SortKey, ...],
    value: Callable[[T, str], Any],
    page: PageRequest,
) -> Page[T]:
    """Sorted as the SQL adapter sorts: by each key in turn, then by id (stable sorts, the
    last key first)."""
    ordered = sorted(items, key=lambda item: value(item, "id"))
    for key in reversed(ordering):

        def sort_key(item: T, field: str = key.field) -> Any:
            return value(item, field)

        ordered.sort(key=sort_key, reverse=key.descending)
    return Page(ordered[page.offset : page.offset + page.limit], len(ordered))


def _first(items: Iterable[T], limit: int) -> list[T]:
    """The first ``limit`` records by id."""
    return sorted(items, key=lambda item: item.id)[:limit]  # type: ignore[attr-defined]


def _contains(key: str | None, *texts: str) -> bool:
    return key is None or any(key in search_key(text) for text in texts)


def _patient_value(patient: Patient, field: str) -> Any:
    return search_key(patient.name) if field == "name" else getattr(patient, field)


def _doctor_value(doctor: Doctor, field: str) -> Any:
    if field in ("name", "specialization"):
        return search_key(getattr(doctor, field))
    return doctor.id


class _Writable:
    """The tables to write to: each is the unit's own copy (see ``_Workspace.writable``)."""

    def __init__(self, workspace: _Workspace) -> None:
        self._workspace = workspace

    @property
    def users(self) -> dict[int, User]:
        return self._workspace.writable("users")

    @property
    def patients(self) -> dict[int, Patient]:
        return self._workspace.writable("patients")

    @property
    def doctors(self) -> dict[int, Doctor]:
        return self._workspace.writable("doctors")

    @property
    def mappings(self) -> dict[int, tuple[int, int, datetime]]:
        return self._workspace.writable("mappings")

    @property
    def refresh_sessions(self) -> dict[str, RefreshSession]:
        return self._workspace.writable("refresh_sessions")

    @property
    def audit_events(self) -> dict[int, AuditEvent]:
        return self._workspace.writable("audit_events")


class _Repository:
    def __init__(self, store: MemoryStore, workspace: _Workspace) -> None:
        self._store = store
        self._workspace = workspace
        self._w = _Writable(workspace)

    @property
    def _t(self) -> _Tables:
        """The tables to read."""
        return self._workspace.tables


class MemoryUserRepository(_Repository):
    async def add(self, user: NewUser) -> User:
        for existing in self._t.users.values():
            if identity_key(existing.username) == identity_key(user.username):
                self._workspace.wrote(None)
                raise Conflict("A user with that username already exists", "username")
            if identity_key(existing.email) == identity_key(user.email):
                self._workspace.wrote(None)
                raise Conflict("A user with that email already exists", "email")
        # Every name of every account, by what it looks like (the SQL adapter's login_name).
        taken = {
            key
            for existing in self._t.users.values()
            for key in login_name_keys(existing.username, existing.email).values()
        }
        for name, key in login_name_keys(user.username, user.email).items():
            if key in taken:
                self._workspace.wrote(None)
                raise Conflict(LOOKALIKE_TAKEN[name], name)
        now = _now()
        stored = User(
            id=self._store.next_id(),
            username=user.username,
            email=user.email,
            password_hash=user.password_hash,
            is_active=True,
            is_staff=user.is_staff,
            is_superuser=user.is_superuser,
            date_joined=now,
            updated_at=now,
        )
        self._w.users[stored.id] = stored
        self._workspace.wrote(stored.id)
        return stored

    async def get(self, user_id: int) -> User | None:
        return self._t.users.get(user_id)

    async def set_active(self, user_id: int, active: bool) -> User | None:
        return self._change(user_id, is_active=active)

    async def set_password_hash(self, user_id: int, password_hash: str) -> User | None:
        return self._change(user_id, password_hash=password_hash)

    async def set_staff(self, user_id: int, staff: bool) -> User | None:
        return self._change(user_id, is_staff=staff)

    async def set_email(self, user_id: int, email: str) -> User | None:
        key = identity_key(email)
        if any(identity_key(u.email) == key and u.id != user_id for u in self._t.users.values()):
            self._workspace.wrote(None)
            raise Conflict("A user with that email already exists", "email")
        # As add: no other account may have a name that looks like the new email.
        user = self._t.users.get(user_id)
        if user is not None:
            taken = {
                key
                for existing in self._t.users.values()
                if existing.id != user_id
                for key in login_name_keys(existing.username, existing.email).values()
            }
            for name, key in login_name_keys(user.username, email).items():
                if key in taken:
                    self._workspace.wrote(None)
                    raise Conflict(LOOKALIKE_TAKEN[name], name)
        return self._change(user_id, email=email)

    async def list(self, page: PageRequest, where: UserFilter = NO_USER_FILTER) -> Page[User]:
        found = (
            u
            for u in self._t.users.values()
            if (
                where.search is None
                or where.search in identity_key(u.username)
                or where.search in identity_key(u.email)
            )
            and (where.is_staff is None or u.is_staff == where.is_staff)
            and (where.is_active is None or u.is_active == where.is_active)
        )
        return _page(found, page, key=lambda u: u.id)

    def _change(self, user_id: int, **changes: Any) -> User | None:
        user = self._t.users.get(user_id)
        if user is None:
            self._workspace.wrote(None)
            return None
        self._w.users[user_id] = replace(user, updated_at=_now(), **changes)
        self._workspace.wrote(user_id)
        return self._t.users[user_id]

    async def find_by_login(self, username_or_email: str) -> User | None:
        key = identity_key(username_or_email)
        by_email = (u for u in self._t.users.values() if identity_key(u.email) == key)
        by_username = (u for u in self._t.users.values() if identity_key(u.username) == key)
        return next(by_email, None) or next(by_username, None)


class MemoryPatientRepository(_Repository):
    async def add(self, owner_id: int, data: PatientData) -> Patient:
        now = _now()
        patient = Patient(
            id=self._store.next_id(),
            created_by=owner_id,
            created_at=now,
            updated_at=now,
            **_fields(data),
        )
        self._w.patients[patient.id] = patient
        self._workspace.wrote(patient.id)
        return patient

    async def find(self, patient_id: int) -> Patient | None:
        return self._t.patients.get(patient_id)

    async def add_many(self, owner_id: int, rows: Sequence[PatientData]) -> Sequence[int]:
        return [(await self.add(owner_id, data)).id for data in rows]

    async def batch_after(
        self, owner_id: int | None, after_id: int, limit: int
    ) -> Sequence[Patient]:
        found = (
            p
            for p in self._t.patients.values()
            if p.id > after_id and (owner_id is None or p.created_by == owner_id)
        )
        return _first(found, limit)

    async def get(self, owner_id: int, patient_id: int) -> Patient | None:
        return self._owned(owner_id, patient_id)

    def _owned(self, owner_id: int, patient_id: int) -> Patient | None:
        patient = self._t.patients.get(patient_id)
        return patient if patient is not None and patient.created_by == owner_id else None

    async def list(
        self, owner_id: int | None, page: PageRequest, where: PatientFilter = NO_PATIENT_FILTER
    ) -> Page[Patient]:
        found = (
            p
            for p in self._t.patients.values()
            if (owner_id is None or p.created_by == owner_id)
            and _contains(where.search, p.name)
            and (where.gender is None or p.gender is where.gender)
            and (where.min_age is None or p.age >= where.min_age)
            and (where.max_age is None or p.age <= where.max_age)
            and (where.created_after is None or p.created_at > where.created_after)
            and (where.created_before is None or p.created_at < where.created_before)
        )
        return _ordered(found, where.ordering, _patient_value, page)

    async def update(
        self,
        owner_id: int,
        patient_id: int,
        data: PatientData,
        expected_version: int | None = None,
    ) -> Patient | None:
        return await self.patch(owner_id, patient_id, _fields(data), expected_version)

    async def patch(
        self,
        owner_id: int,
        patient_id: int,
        changes: PatientChanges,
        expected_version: int | None = None,
    ) -> Patient | None:
        patient = self._owned(owner_id, patient_id)
        if patient is None:
            self._workspace.wrote(None)
            return None
        _refuse_other_version(self._workspace, "Patient", patient, expected_version)
        fields: dict[str, Any] = dict(changes)
        updated = replace(patient, updated_at=_now(), version=patient.version + 1, **fields)
        self._w.patients[patient_id] = updated
        self._workspace.wrote(patient_id)
        return updated

    async def delete(
        self, owner_id: int, patient_id: int, expected_version: int | None = None
    ) -> bool:
        patient = await self.get(owner_id, patient_id)
        if patient is None:
            self._workspace.wrote(None)
            return False
        _refuse_other_version(self._workspace, "Patient", patient, expected_version)
        del self._w.patients[patient_id]
        _drop_mappings(self._w.mappings, lambda patient, _doctor: patient == patient_id)
        self._workspace.wrote(patient_id)
        return True


class MemoryDoctorRepository(_Repository):
    async def add(self, creator_id: int, data: DoctorData) -> Doctor:
        now = _now()
        doctor = Doctor(
            id=self._store.next_id(),
            created_by=creator_id,
            created_at=now,
            updated_at=now,
            **_fields(data),
        )
        self._w.doctors[doctor.id] = doctor
        self._workspace.wrote(doctor.id)
        return doctor

    async def get(self, doctor_id: int) -> Doctor | None:
        return self._t.doctors.get(doctor_id)

    async def add_many(self, creator_id: int, rows: Sequence[DoctorData]) -> Sequence[int]:
        return [(await self.add(creator_id, data)).id for data in rows]

    async def batch_after(self, after_id: int, limit: int) -> Sequence[Doctor]:
        return _first((d for d in self._t.doctors.values() if d.id > after_id), limit)

    async def list(self, page: PageRequest, where: DoctorFilter = NO_DOCTOR_FILTER) -> Page[Doctor]:
        found = (
            d
            for d in self._t.doctors.values()
            if _contains(where.search, d.name, d.specialization)
            and (
                where.specialization is None or search_key(d.specialization) == where.specialization
            )
        )
        return _ordered(found, where.ordering, _doctor_value, page)

    async def update(
        self, doctor_id: int, data: DoctorData, expected_version: int | None = None
    ) -> Doctor | None:
        doctor = self._t.doctors.get(doctor_id)
        if doctor is None:
            self._workspace.wrote(None)
            return None
        _refuse_other_version(self._workspace, "Doctor", doctor, expected_version)
        updated = replace(doctor, updated_at=_now(), version=doctor.version + 1, **_fields(data))
        self._w.doctors[doctor_id] = updated
        self._workspace.wrote(doctor_id)
        return updated

    async def delete(self, doctor_id: int, expected_version: int | None = None) -> bool:
        doctor = self._t.doctors.get(doctor_id)
        if doctor is None:
            self._workspace.wrote(None)
            return False
        _refuse_other_version(self._workspace, "Doctor", doctor, expected_version)
        del self._w.doctors[doctor_id]
        _drop_mappings(self._w.mappings, lambda _patient, doctor: doctor == doctor_id)
        self._workspace.wrote(doctor_id)
        return True


class MemoryMappingRepository(_Repository):
    def _mapping(self, mapping_id: int) -> Mapping:
        patient_id, doctor_id, created_at = self._t.mappings[mapping_id]
        return Mapping(mapping_id, patient_id, self._t.doctors[doctor_id], created_at, created_at)

    def _owns(self, owner_id: int, patient_id: int) -> bool:
        patient = self._t.patients.get(patient_id)
        return patient is not None and patient.created_by == owner_id

    async def add(self, owner_id: int, patient_id: int, doctor_id: int) -> Mapping:
        refusal: Exception | None = None
        if not self._owns(owner_id, patient_id):
            refusal = NotFound("Patient", patient_id)
        elif doctor_id not in self._t.doctors:
            refusal = NotFound("Doctor", doctor_id)
        elif any((p, d) == (patient_id, doctor_id) for p, d, _ in self._t.mappings.values()):
            refusal = Conflict("This doctor is already assigned to this patient")
        if refusal is not None:
            self._workspace.wrote(None)
            raise refusal
        mapping_id = self._store.next_id()
        self._w.mappings[mapping_id] = (patient_id, doctor_id, _now())
        self._workspace.wrote(mapping_id)
        return self._mapping(mapping_id)

    async def batch_after(
        self, owner_id: int | None, after_id: int, limit: int
    ) -> Sequence[Mapping]:
        ids = sorted(
            mid
            for mid, (patient_id, _, _) in self._t.mappings.items()
            if mid > after_id
            and (owner_id is None or self._t.patients[patient_id].created_by == owner_id)
        )
        return [self._mapping(mid) for mid in ids[:limit]]

    async def get(self, owner_id: int, mapping_id: int) -> Mapping | None:
        row = self._t.mappings.get(mapping_id)
        if row is None or self._t.patients[row[0]].created_by != owner_id:
            return None
        return self._mapping(mapping_id)

    async def list_for_owner(
        self, owner_id: int, page: PageRequest, where: MappingFilter = NO_MAPPING_FILTER
    ) -> Page[Mapping]:
        ids = (
            mid
            for mid, (patient_id, doctor_id, _) in self._t.mappings.items()
            if self._t.patients[patient_id].created_by == owner_id
            and where.patient_id in (None, patient_id)
            and where.doctor_id in (None, doctor_id)
        )

        def value(mid: int, field: str) -> Any:
            return mid if field == "id" else self._t.mappings[mid][2]

        result = _ordered(ids, where.ordering, value, page)
        return Page([self._mapping(mid) for mid in result.items], result.total)

    async def list_for_patient(
        self, owner_id: int, patient_id: int, page: PageRequest
    ) -> Page[Mapping] | None:
        if not self._owns(owner_id, patient_id):
            return None
        ids = (mid for mid, (p, _, _) in self._t.mappings.items() if p == patient_id)
        result = _page(ids, page, key=lambda mid: mid)
        return Page([self._mapping(mid) for mid in result.items], result.total)

    async def doctors_of_patient(
        self, owner_id: int, patient_id: int, page: PageRequest
    ) -> Page[Doctor] | None:
        result = await self.list_for_patient(owner_id, patient_id, page)
        return None if result is None else Page([m.doctor for m in result.items], result.total)

    async def delete(self, mapping_id: int) -> bool:
        deleted = self._w.mappings.pop(mapping_id, None) is not None
        self._workspace.wrote(mapping_id if deleted else None)
        return deleted


class MemoryRefreshSessionRepository(_Repository):
    async def add(self, session: RefreshSession) -> None:
        self._w.refresh_sessions[session.id] = session
        self._workspace.wrote(session.user_id)  # (a session's id is not a number)

    async def get(self, session_id: str) -> RefreshSession | None:
        return self._t.refresh_sessions.get(session_id)

    async def rotate(
        self, session_id: str, user_id: int, spent_jti: str, next_jti: str
    ) -> User | None:
        session = self._t.refresh_sessions.get(session_id)
        user = self._t.users.get(user_id)
        if (
            session is None
            or session.is_revoked
            or session.user_id != user_id
            or session.current_jti != spent_jti
            or user is None
            or not user.is_active
        ):
            self._workspace.wrote(None)
            return None
        self._w.refresh_sessions[session_id] = replace(session, current_jti=next_jti)
        self._workspace.wrote(user.id)  # (as PostgreSQL's statement returns the user)
        return user

    async def revoke(self, session_id: str, when: datetime) -> None:
        session = self._t.refresh_sessions.get(session_id)
        if session is not None and not session.is_revoked:
            self._w.refresh_sessions[session_id] = replace(session, revoked_at=when)
            self._workspace.wrote(session.user_id)
        else:
            self._workspace.wrote(None)

    async def revoke_all_for_user(self, user_id: int, when: datetime) -> None:
        for session in list(self._t.refresh_sessions.values()):
            if session.user_id == user_id:
                await self.revoke(session.id, when)


class MemoryAuditRepository(_Repository):
    async def add(self, events: Sequence[AuditEvent]) -> None:
        for event in events:
            event_id = self._store.next_id()
            self._w.audit_events[event_id] = replace(event, id=event_id)

    async def add_for_each(self, event: AuditEvent, resource_ids: Sequence[int]) -> None:
        await self.add([replace(event, resource_id=rid) for rid in resource_ids])

    async def list(self, query: AuditQuery, page: PageRequest) -> Page[AuditEvent]:
        found = [e for e in self._t.audit_events.values() if query.matches(e)]
        found.sort(key=lambda e: (e.occurred_at, e.id or 0), reverse=True)
        return Page(found[page.offset : page.offset + page.limit], len(found))


def _refuse_other_version(
    workspace: _Workspace, resource: str, record: Patient | Doctor, expected: int | None
) -> None:
    """PreconditionFailed if ``record`` is at another version than the one asked for (the
    write is refused, as the SQL one changes no row)."""
    if expected is not None and record.version != expected:
        workspace.wrote(None)
        raise PreconditionFailed(resource, record.id, record.version)


def _fields(data: PatientData | DoctorData) -> dict[str, Any]:
    return asdict(data)


def _drop_mappings(
    mappings: dict[int, tuple[int, int, datetime]], doomed: Callable[[int, int], bool]
) -> None:
    for mapping_id in [m for m, (p, d, _) in mappings.items() if doomed(p, d)]:
        del mappings[mapping_id]


class MemoryUnitOfWork:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._workspace = _Workspace(_Tables(), store)  # attached to the store on entry
        self.users = MemoryUserRepository(store, self._workspace)
        self.patients = MemoryPatientRepository(store, self._workspace)
        self.doctors = MemoryDoctorRepository(store, self._workspace)
        self.mappings = MemoryMappingRepository(store, self._workspace)
        self.refresh_sessions = MemoryRefreshSessionRepository(store, self._workspace)
        self.audit = MemoryAuditRepository(store, self._workspace)
        self._entered = False

    def _require_entered(self) -> None:
        if not self._entered:
            raise RuntimeError("The unit of work has not been entered")

    async def __aenter__(self) -> Self:
        if self._entered:  # as the SQL unit of work: waiting for our own lock never ends
            raise RuntimeError("This unit of work is already in use")
        self._entered = True
        try:
            await self._store.lock.acquire()
        except BaseException:
            self._entered = False
            raise
        workspace = self._workspace
        workspace.share(self._store.tables)
        workspace.final, workspace.final_attached, workspace.final_committed = None, False, False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._entered = False
        self._store.lock.release()

    async def commit(self) -> None:
        self._require_entered()
        self._store.tables = self._workspace.tables
        self._workspace.share(self._store.tables)
        self._workspace.final_committed |= self._workspace.final_attached

    async def rollback(self) -> None:
        self._require_entered()
        self._workspace.share(self._store.tables)
        if not self._workspace.final_committed:
            self._workspace.final, self._workspace.final_attached = None, False

    def commit_with_next_write(self, event: AuditEvent) -> None:
        if self._workspace.final_attached:
            raise RuntimeError("Nothing may be written after a unit's final write")
        self._workspace.final = event

    @property
    def final_event_committed(self) -> bool:
        return self._workspace.final_committed
