"""The audit trail's vocabulary: who did what to which resource, from where, and how it ended.

An event names a resource by type and id and never carries its contents, a password or a
token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from healthcare.domain.values import value_object


class AuditAction(StrEnum):
    REGISTER = "auth.register"
    LOGIN = "auth.login"
    REFRESH = "auth.refresh"
    REFRESH_REUSE = "auth.refresh_reuse"  # a spent refresh token came back: chain revoked
    LOGOUT = "auth.logout"
    PASSWORD_CHANGE = "auth.password_change"  # noqa: S105 - an action's name
    USER_DEACTIVATE = "user.deactivate"
    USER_ACTIVATE = "user.activate"
    USER_CREATE = "user.create"  # by an administrator; a sign-up is auth.register
    USER_READ = "user.read"
    USER_LIST = "user.list"
    USER_SET_STAFF = "user.set_staff"
    USER_SET_EMAIL = "user.set_email"
    USER_SET_PASSWORD = "user.set_password"  # noqa: S105 - by an administrator
    PATIENT_CREATE = "patient.create"
    PATIENT_READ = "patient.read"
    PATIENT_UPDATE = "patient.update"
    PATIENT_DELETE = "patient.delete"
    PATIENT_LIST = "patient.list"
    PATIENT_DOCTORS = "patient.doctors"  # the doctors of one patient
    MAPPING_CREATE = "mapping.create"
    MAPPING_DELETE = "mapping.delete"
    MAPPING_LIST = "mapping.list"  # every mapping of the caller's patients
    MAPPING_LIST_PATIENT = "mapping.list_patient"  # the mappings of one patient
    AUDIT_READ = "audit.read"


class AuditOutcome(StrEnum):
    SUCCESS = "success"
    INVALID = "invalid"
    NOT_FOUND = "not_found"
    DENIED = "denied"
    CONFLICT = "conflict"
    STALE = "stale"  # a change asked for a version (If-Match) that is no longer current
    FAILED = "failed"  # credentials or a token were refused
    THROTTLED = "throttled"
    ERROR = "error"  # the service failed; nothing was changed


class ResourceType(StrEnum):
    USER = "user"
    PATIENT = "patient"
    MAPPING = "mapping"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from: the client's address and the request's id."""

    client: str | None = None
    request_id: str | None = None


NOWHERE = Origin()  # calls that come from no request, such as the command line


@value_object
class AuditEvent:
    occurred_at: datetime
    action: AuditAction
    outcome: AuditOutcome
    user_id: int | None  # who acted; None before anyone is signed in
    resource_type: ResourceType | None
    resource_id: int | None
    client: str | None
    request_id: str | None
    id: int | None = None  # given by the store


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of the audit trail; each one left as None matches everything."""

    user_id: int | None = None
    resource_type: ResourceType | None = None
    resource_id: int | None = None
    action: AuditAction | None = None
    outcome: AuditOutcome | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive

    def matches(self, event: AuditEvent) -> bool:
        return (
            (self.user_id is None or event.user_id == self.user_id)
            and (self.resource_type is None or event.resource_type == self.resource_type)
            and (self.resource_id is None or event.resource_id == self.resource_id)
            and (self.action is None or event.action == self.action)
            and (self.outcome is None or event.outcome == self.outcome)
            and (self.since is None or event.occurred_at >= self.since)
            and (self.until is None or event.occurred_at < self.until)
        )
