"""Recording the audit trail from the use cases, and reading it back."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from healthcare.application.paging import Page, PageRequest
from healthcare.application.ports import AuditTrail, Clock, UnitOfWork
from healthcare.domain.audit import (
    AuditAction,
    AuditEvent,
    AuditOutcome,
    AuditQuery,
    Origin,
    ResourceType,
)
from healthcare.domain.entities import Principal
from healthcare.domain.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    TooManyAttempts,
)

# What each domain error means in the trail. Its HTTP status is in entrypoints/http/problems.py;
# tests/unit/test_errors.py holds every DomainError to a row in both.
OUTCOMES: tuple[tuple[type[DomainError], AuditOutcome], ...] = (
    (InvalidInput, AuditOutcome.INVALID),
    (NotFound, AuditOutcome.NOT_FOUND),
    (Forbidden, AuditOutcome.DENIED),
    (Conflict, AuditOutcome.CONFLICT),
    (PreconditionFailed, AuditOutcome.STALE),
    (AuthenticationFailed, AuditOutcome.FAILED),
    (TooManyAttempts, AuditOutcome.THROTTLED),
)


def outcome_of(error: BaseException) -> AuditOutcome:
    for kind, outcome in OUTCOMES:
        if isinstance(error, kind):
            return outcome
    return AuditOutcome.ERROR


class AuditScope:
    """One audited action of a use case, entered around all of its work.

    A change stages its success event in its own unit of work, so the event is kept exactly
    when the change is: just before committing (``stage``), or, for a change made by one
    write, with that write (``commit_with_next_write``: the two can then reach the database
    as one statement). Anything else (a read, or a refusal) is written to the trail when
    the scope ends: a success if nothing was staged, or the outcome the raised error stands
    for. A domain error after staging comes after the commit (the refresh-reuse path
    commits its revocation, then refuses), so it adds no second event; any other error after
    staging means the commit failed (or, where the final write committed by itself, that the
    unit failed afterwards), which is recorded as an error.
    """

    def __init__(
        self,
        trail: AuditTrail,
        clock: Clock,
        action: AuditAction,
        *,
        origin: Origin,
        user_id: int | None,
        resource_type: ResourceType | None,
        resource_id: int | None,
    ) -> None:
        self._trail = trail
        self._clock = clock
        self.action = action
        self.origin = origin
        self.user_id = user_id
        self.resource_type = resource_type
        self.resource_id = resource_id
        self._staged = False
        self._committing_with: UnitOfWork | None = None

    def event(
        self,
        outcome: AuditOutcome,
        action: AuditAction | None = None,
        *,
        created_id: int | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            occurred_at=self._clock.now(),
            action=action or self.action,
            outcome=outcome,
            user_id=self.user_id if self.user_id is not None else created_id,
            resource_type=self.resource_type,
            resource_id=self.resource_id if self.resource_id is not None else created_id,
            client=self.origin.client,
            request_id=self.origin.request_id,
        )

    async def stage(
        self,
        uow: UnitOfWork,
        outcome: AuditOutcome = AuditOutcome.SUCCESS,
        action: AuditAction | None = None,
        *,
        created_id: int | None = None,
    ) -> None:
        """Add the event to ``uow``'s transaction; call it just before committing.

        ``created_id`` is the id of what this transaction creates (for a new account, also
        the acting user): the event names it, and is kept only if the commit keeps both.
        """
        await uow.audit.add([self.event(outcome, action, created_id=created_id)])
        self._staged = True

    def commit_with_next_write(self, uow: UnitOfWork) -> None:
        """Have ``uow``'s next write carry the success event: kept exactly when that write
        changes a row (and naming the row it creates when the scope names no resource).

        The write and its event can then reach the database together, in one statement.
        """
        uow.commit_with_next_write(self.event(AuditOutcome.SUCCESS))
        self._committing_with = uow

    @property
    def _recorded_with_change(self) -> bool:
        committing = self._committing_with
        return self._staged or (committing is not None and committing.final_event_committed)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        staged = self._recorded_with_change
        if exc is None:
            if not staged:
                await self._trail.record(self.event(AuditOutcome.SUCCESS))
        elif not (staged and isinstance(exc, DomainError)):
            await self._trail.record(self.event(outcome_of(exc)))


class Auditor:
    """Opens an AuditScope per audited action; shared by the use cases."""

    def __init__(self, trail: AuditTrail, clock: Clock) -> None:
        self.trail = trail
        self._clock = clock

    def of(
        self,
        principal: Principal,
        action: AuditAction,
        resource_type: ResourceType | None = None,
        resource_id: int | None = None,
    ) -> AuditScope:
        """An action of a signed-in caller."""
        return self.scope(action, principal.origin, principal.user_id, resource_type, resource_id)

    def scope(
        self,
        action: AuditAction,
        origin: Origin,
        user_id: int | None = None,
        resource_type: ResourceType | None = None,
        resource_id: int | None = None,
    ) -> AuditScope:
        return AuditScope(
            self.trail,
            self._clock,
            action,
            origin=origin,
            user_id=user_id,
            resource_type=resource_type,
            resource_id=resource_id,
        )


class ListAuditEvents:
    """Administrators read the trail, newest first; reading it is audited too."""

    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def __call__(
        self, principal: Principal, query: AuditQuery, page: PageRequest
    ) -> Page[AuditEvent]:
        async with self._audit.of(principal, AuditAction.AUDIT_READ):
            if not principal.is_admin:
                raise Forbidden("Only an administrator may read the audit trail")
            if query.since and query.until and query.since >= query.until:
                raise InvalidInput.single("until", "must be later than since")
            # Events this process still holds are written first, so none is missing.
            await self._audit.trail.flush()
            async with self._uow as uow:
                return await uow.audit.list(query, page)
