"""Ports: what the use cases need from the outside world, as protocols."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

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
    Principal,
    RefreshSession,
    User,
)
from healthcare.domain.listing import (
    NO_DOCTOR_FILTER,
    NO_MAPPING_FILTER,
    NO_PATIENT_FILTER,
    NO_USER_FILTER,
    DoctorFilter,
    MappingFilter,
    PatientFilter,
    UserFilter,
)
from healthcare.domain.rules import identity_key


class UserRepository(Protocol):
    async def add(self, user: NewUser) -> User:
        """Store a new user. Raises Conflict (naming the field) if the username or the email
        is, or looks like, a username or an email of another account."""
        ...

    async def get(self, user_id: int) -> User | None: ...

    async def set_active(self, user_id: int, active: bool) -> User | None: ...

    async def set_password_hash(self, user_id: int, password_hash: str) -> User | None: ...

    async def set_staff(self, user_id: int, staff: bool) -> User | None: ...

    async def set_email(self, user_id: int, email: str) -> User | None:
        """Raises Conflict if another account has that email (in any letter case)."""
        ...

    async def list(self, page: PageRequest, where: UserFilter = NO_USER_FILTER) -> Page[User]:
        """The accounts that ``where`` admits, by id."""
        ...

    async def find_by_login(self, username_or_email: str) -> User | None:
        """Find by email or username, compared case-insensitively.

        An email match wins over a username match, so nobody can lock the owner of an
        address out of signing in with it by taking that address as a username.
        """
        ...


class PatientRepository(Protocol):
    """Every method is scoped to an owner: another user's patient does not exist. (Except
    ``find``, the bulk methods and a list without an owner: administrators' use cases
    only.)"""

    async def find(self, patient_id: int) -> Patient | None:
        """The patient, whoever owns it."""
        ...

    async def add_many(self, owner_id: int, rows: Sequence[PatientData]) -> Sequence[int]:
        """Store validated ``rows`` for ``owner_id`` in the unit's transaction, fast (COPY
        where the database has it); their ids, in order."""
        ...

    async def batch_after(
        self, owner_id: int | None, after_id: int, limit: int
    ) -> Sequence[Patient]:
        """Up to ``limit`` patients with ids above ``after_id``, by id: an export's next
        batch (every owner's when ``owner_id`` is None)."""
        ...

    async def add(self, owner_id: int, data: PatientData) -> Patient: ...

    async def get(self, owner_id: int, patient_id: int) -> Patient | None: ...

    async def list(
        self, owner_id: int | None, page: PageRequest, where: PatientFilter = NO_PATIENT_FILTER
    ) -> Page[Patient]:
        """The owner's patients that ``where`` admits, in its order then by id; every
        owner's when ``owner_id`` is None (for administrators)."""
        ...

    async def update(
        self,
        owner_id: int,
        patient_id: int,
        data: PatientData,
        expected_version: int | None = None,
    ) -> Patient | None:
        """Replace the patient's data and bump its version; None if there is no such patient.

        With ``expected_version``, only while the patient is at that version, checked and
        written in one step; at another version, PreconditionFailed and nothing changes.
        """
        ...

    async def patch(
        self,
        owner_id: int,
        patient_id: int,
        changes: PatientChanges,
        expected_version: int | None = None,
    ) -> Patient | None:
        """Set the fields ``changes`` names (checked by rules.patient_changes), keep the
        others, and bump the version, in one step; None if there is no such patient.

        ``expected_version`` as in ``update``.
        """
        ...

    async def delete(
        self, owner_id: int, patient_id: int, expected_version: int | None = None
    ) -> bool:
        """Delete the patient and its mappings. False if there was no such patient.

        ``expected_version`` as in ``update``.
        """
        ...


class DoctorRepository(Protocol):
    async def add(self, creator_id: int, data: DoctorData) -> Doctor: ...

    async def add_many(self, creator_id: int, rows: Sequence[DoctorData]) -> Sequence[int]:
        """As PatientRepository.add_many."""
        ...

    async def batch_after(self, after_id: int, limit: int) -> Sequence[Doctor]:
        """As PatientRepository.batch_after."""
        ...

    async def get(self, doctor_id: int) -> Doctor | None: ...

    async def list(self, page: PageRequest, where: DoctorFilter = NO_DOCTOR_FILTER) -> Page[Doctor]:
        """The doctors that ``where`` admits, in its order then by id."""
        ...

    async def update(
        self, doctor_id: int, data: DoctorData, expected_version: int | None = None
    ) -> Doctor | None:
        """As PatientRepository.update."""
        ...

    async def delete(self, doctor_id: int, expected_version: int | None = None) -> bool:
        """Delete the doctor and its mappings. False if there was no such doctor.

        ``expected_version`` as in PatientRepository.update.
        """
        ...


class MappingRepository(Protocol):
    async def add(self, owner_id: int, patient_id: int, doctor_id: int) -> Mapping:
        """Assign the doctor to ``owner_id``'s patient.

        Raises NotFound for a patient that is not the owner's (or does not exist), then for a
        doctor that does not exist, and Conflict if the pair exists.
        """
        ...

    async def get(self, owner_id: int, mapping_id: int) -> Mapping | None:
        """A mapping whose patient belongs to ``owner_id``."""
        ...

    async def list_for_owner(
        self, owner_id: int, page: PageRequest, where: MappingFilter = NO_MAPPING_FILTER
    ) -> Page[Mapping]: ...

    async def list_for_patient(
        self, owner_id: int, patient_id: int, page: PageRequest
    ) -> Page[Mapping] | None:
        """The mappings of ``owner_id``'s patient; None if the patient is not theirs."""
        ...

    async def doctors_of_patient(
        self, owner_id: int, patient_id: int, page: PageRequest
    ) -> Page[Doctor] | None:
        """The doctors of ``owner_id``'s patient; None if the patient is not theirs."""
        ...

    async def delete(self, mapping_id: int) -> bool: ...

    async def batch_after(
        self, owner_id: int | None, after_id: int, limit: int
    ) -> Sequence[Mapping]:
        """As PatientRepository.batch_after (``owner_id``: the patients' owner)."""
        ...


class RefreshSessionRepository(Protocol):
    async def add(self, session: RefreshSession) -> None: ...

    async def get(self, session_id: str) -> RefreshSession | None: ...

    async def rotate(
        self, session_id: str, user_id: int, spent_jti: str, next_jti: str
    ) -> User | None:
        """Replace ``spent_jti`` by ``next_jti`` atomically, and return the chain's user.

        ``next_jti`` may be ``spent_jti``: the chain stays on its token, and the answer says
        whether that token is still live.

        Only a chain that is ``user_id``'s, not revoked, and whose next token is
        ``spent_jti`` rotates, and only while that user's account is active; otherwise
        nothing changes and the answer is None. Two refreshes racing with one token: the
        second finds the token changed.
        """
        ...

    async def revoke(self, session_id: str, when: datetime) -> None: ...

    async def revoke_all_for_user(self, user_id: int, when: datetime) -> None:
        """Revoke every chain of the user, and record that their access tokens issued
        before ``when`` are refused, for every worker to learn (AccessTokenRevocations)."""
        ...


class AuditRepository(Protocol):
    """The append-only audit trail: events are added and read, never changed or removed."""

    async def add(self, events: Sequence[AuditEvent]) -> None: ...

    async def add_for_each(self, event: AuditEvent, resource_ids: Sequence[int]) -> None:
        """``event`` once for each of ``resource_ids`` (a bulk import's records), in the
        unit's transaction."""
        ...

    async def list(self, query: AuditQuery, page: PageRequest) -> Page[AuditEvent]:
        """Matching events, newest first."""
        ...


class UnitOfWork(Protocol):
    """One transaction. Entered by a use case; nothing is kept unless it commits."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def patients(self) -> PatientRepository: ...

    @property
    def doctors(self) -> DoctorRepository: ...

    @property
    def mappings(self) -> MappingRepository: ...

    @property
    def refresh_sessions(self) -> RefreshSessionRepository: ...

    @property
    def audit(self) -> AuditRepository: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...

    def commit_with_next_write(self, event: AuditEvent) -> None:
        """Keep ``event`` exactly when the unit's next write changes a row.

        An event without a resource id then names the row that write created. That write
        is the unit's last: the adapter may commit with it (``commit`` still ends the unit,
        and does nothing if the write committed already), and nothing may be written after
        it (RuntimeError). A write that changes no row, or is refused, drops ``event``, and
        the unit goes on.
        """
        ...

    @property
    def final_event_committed(self) -> bool:
        """Whether the event given to ``commit_with_next_write`` is committed (also after
        the unit has ended, until it is entered again)."""
        ...


class AuditTrail(Protocol):
    """Where events that accompany no change (reads, refusals) are written.

    An event that records a change is added through the unit of work instead, so that it is
    kept exactly when the change is.
    """

    async def record(self, event: AuditEvent) -> None: ...

    async def flush(self) -> None:
        """Write whatever this process still holds, before the trail is read."""
        ...


class PasswordHasher(Protocol):
    """Slow hashing; implementations run it off the event loop.

    ``on_behalf_of`` names whom a hash is for (an account, a client): implementations
    share their threads fairly between parties, so that no one party's storm of hashes
    holds up everyone else's.
    """

    async def hash(self, password: str, *, on_behalf_of: str | None = None) -> str: ...

    async def verify(
        self, password: str, password_hash: str, *, on_behalf_of: str | None = None
    ) -> bool: ...

    async def waste_time(self, password: str, *, on_behalf_of: str | None = None) -> None:
        """Cost as much as a failed verify, so unknown usernames cannot be told apart."""
        ...


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    expires_in: int  # seconds


@dataclass(frozen=True, slots=True)
class RefreshClaims:
    user_id: int
    session_id: str
    jti: str


class TokenService(Protocol):
    def issue_access(self, principal: Principal) -> IssuedToken: ...

    def issue_refresh(self, user_id: int, session_id: str) -> IssuedToken: ...

    def read_access(self, token: str) -> Principal:
        """Raises AuthenticationFailed for anything but a valid, unexpired access token."""
        ...

    def read_refresh(self, token: str) -> RefreshClaims:
        """Raises AuthenticationFailed for anything but a valid, unexpired refresh token."""
        ...


class AccessTokenRevocations(Protocol):
    """What this process's token checks refuse before the tokens expire."""

    def revoke_before(self, user_id: int, when: datetime) -> None:
        """Refuse the user's access tokens issued before ``when``, here, at once. (Other
        processes learn it from the store, where revoke_all_for_user recorded it.)"""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class DependencyProbe(Protocol):
    """Whether a store the service needs (the database, the throttles' Redis) answers now."""

    async def is_reachable(self) -> bool:
        """True when it answers a trivial request in time, the way requests reach it."""
        ...


class LoginThrottle(Protocol):
    """Brute-force brakes on password checks, per account and per client address."""

    async def admit(self, account: str, client: str) -> None:
        """Count an attempt on ``account`` (see ``throttle_key``); raise TooManyAttempts
        while ``client`` is blocked, or while the account is and ``client`` has failed.

        Attempts are counted before the password is checked, so a burst of parallel guesses
        is counted too.
        """
        ...

    async def failed(self, client: str) -> None:
        """Count a failed password check from ``client``."""
        ...

    async def succeeded(self, account: str) -> None:
        """Forget the account's attempts."""
        ...


def throttle_key(user_id: int | None, typed: str) -> str:
    """What a password check is counted against: the account once the name is resolved,
    so that its username and its email share one count; the name typed when no account
    has it."""
    return f"account:{user_id}" if user_id is not None else "name:" + identity_key(typed)
