"""Request and response bodies (msgspec structs) and their mapping to and from the domain.

Constraints here document the API in OpenAPI and stop malformed input early; the domain's
rules (healthcare.domain.rules) remain the authority, so every entrypoint is held to them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from healthcare.domain import rules
from healthcare.domain.audit import AuditAction, AuditEvent, AuditOutcome, ResourceType
from healthcare.domain.entities import (
    Doctor,
    DoctorData,
    Mapping,
    Patient,
    PatientData,
    User,
)
from healthcare.entrypoints.http.bodies import RequestBody

# Ids stay within the integers a JSON number (a double) holds exactly: JavaScript clients
# read them safely, the OpenAPI bound renders exactly, and nothing beyond BIGINT reaches the
# driver.
MAX_ID = 2**53 - 1

Id = Annotated[int, msgspec.Meta(gt=0, le=MAX_ID, description="A positive integer id")]
GenderName = Literal["Male", "Female", "Other", "Unknown"]


def documented(description: str | None = None, **constraints: object) -> msgspec.Meta:
    """Constraints shown in OpenAPI but enforced by the domain's rules, not by msgspec.

    msgspec stops at the first bad field; the rules report every bad field at once.
    """
    schema: dict[str, object] = {"extra": constraints}
    if description:
        schema["description"] = description
    return msgspec.Meta(extra_json_schema=schema)


Name = Annotated[str, documented(min_length=1, max_length=rules.NAME_MAX)]
OptionalEmail = Annotated[str | None, documented("An email address", max_length=rules.EMAIL_MAX)]
OptionalPhone = Annotated[str | None, documented(max_length=rules.PHONE_MAX)]


# What a client may send back unchanged from a response; ignored, never stored.
RECORD_READ_ONLY = frozenset({"id", "created_by", "created_at", "updated_at"})


# --- accounts -----------------------------------------------------------------------------


class RegisterIn(RequestBody):
    email: Annotated[str, documented("An email address", max_length=rules.EMAIL_MAX)]
    password: Annotated[
        str,
        documented(
            "At least 8 characters, at most 72 bytes in UTF-8, not all digits, not the username",
            min_length=rules.PASSWORD_MIN_CHARS,
        ),
    ]
    username: Annotated[
        str | None,
        documented(
            "Letters, digits and @.+-_; unique regardless of case. When absent, the email "
            "is the username.",
            min_length=rules.USERNAME_MIN,
            max_length=rules.USERNAME_MAX,
        ),
    ] = None


class LoginIn(RequestBody):
    password: str
    username: Annotated[str | None, msgspec.Meta(description="The username or the email")] = None
    email: str | None = None


class RefreshIn(RequestBody):
    refresh: str


class PasswordChangeIn(RequestBody):
    current_password: str
    new_password: Annotated[
        str, documented("The same rules as at registration", min_length=rules.PASSWORD_MIN_CHARS)
    ]


class UserOut(msgspec.Struct, frozen=True):
    id: int
    username: str
    email: str
    is_staff: bool
    is_active: bool
    date_joined: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            user.id, user.username, user.email, user.is_admin, user.is_active, user.date_joined
        )


ExpiresIn = Annotated[int, msgspec.Meta(description="Seconds until the access token expires")]


class TokenPairOut(msgspec.Struct, frozen=True):
    access: str
    refresh: str
    expires_in: ExpiresIn
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme's name


class RefreshedOut(msgspec.Struct, frozen=True, omit_defaults=True):
    """A refresh's answer: the new access token, and the next refresh token only when
    refresh tokens rotate (REFRESH_TOKEN_ROTATION); otherwise the client keeps its own."""

    access: str
    expires_in: ExpiresIn
    token_type: Literal["Bearer"]  # no default: omit_defaults would leave it out
    refresh: Annotated[str | None, msgspec.Meta(description="Only when refresh tokens rotate")] = (
        None
    )


# --- patients -----------------------------------------------------------------------------


# A patient's fields, shared by the whole record (PatientIn) and a partial one (PATCH).
Age = Annotated[int, documented(minimum=rules.AGE_MIN, maximum=rules.AGE_MAX)]
GenderIn = Annotated[str, documented("Male, Female, Other or Unknown, in any letter case")]
OptionalAddress = Annotated[str | None, documented(max_length=rules.ADDRESS_MAX)]
OptionalNotes = Annotated[str | None, documented(max_length=rules.NOTES_MAX)]


class PatientIn(RequestBody):
    read_only = RECORD_READ_ONLY

    name: Name
    age: Age
    gender: GenderIn
    phone: OptionalPhone = None
    email: OptionalEmail = None
    address: OptionalAddress = None
    notes: OptionalNotes = None

    def to_domain(self) -> PatientData:
        return rules.parse_patient(
            name=self.name,
            age=self.age,
            gender=self.gender,
            phone=_blank_is_none(self.phone),
            email=_blank_is_none(self.email),
            address=_blank_is_none(self.address),
            notes=_blank_is_none(self.notes),
        )


class PatientOut(msgspec.Struct, frozen=True):
    id: int
    name: str
    age: int
    gender: GenderName
    phone: str | None
    email: str | None
    address: str | None
    notes: str | None
    created_by: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Patient) -> PatientOut:
        return cls(
            p.id,
            p.name,
            p.age,
            p.gender.value,
            p.phone,
            p.email,
            p.address,
            p.notes,
            p.created_by,
            p.created_at,
            p.updated_at,
        )


# --- doctors ------------------------------------------------------------------------------


class DoctorIn(RequestBody):
    read_only = RECORD_READ_ONLY

    name: Name
    specialization: Name
    email: OptionalEmail = None
    phone: OptionalPhone = None

    def to_domain(self) -> DoctorData:
        return DoctorData(
            name=self.name,
            specialization=self.specialization,
            email=_blank_is_none(self.email),
            phone=_blank_is_none(self.phone),
        )


class DoctorOut(msgspec.Struct, frozen=True):
    id: int
    name: str
    specialization: str
    email: str | None
    phone: str | None
    created_by: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, d: Doctor) -> DoctorOut:
        return cls(
            d.id,
            d.name,
            d.specialization,
            d.email,
            d.phone,
            d.created_by,
            d.created_at,
            d.updated_at,
        )


# --- mappings -----------------------------------------------------------------------------


class MappingIn(RequestBody):
    read_only = frozenset({"id", "doctor_detail", "created_at", "updated_at"})

    patient: Id
    doctor: Id


class MappingOut(msgspec.Struct, frozen=True):
    id: int
    patient: int
    doctor: int
    doctor_detail: DoctorOut
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, m: Mapping) -> MappingOut:
        return cls(
            m.id, m.patient_id, m.doctor.id, DoctorOut.of(m.doctor), m.created_at, m.updated_at
        )


# --- audit --------------------------------------------------------------------------------


class AuditEventOut(msgspec.Struct, frozen=True):
    id: int
    occurred_at: datetime
    action: AuditAction
    outcome: AuditOutcome
    user_id: int | None
    resource_type: ResourceType | None
    resource_id: int | None
    client: str | None
    request_id: str | None

    @classmethod
    def of(cls, e: AuditEvent) -> AuditEventOut:
        return cls(
            e.id or 0,
            e.occurred_at,
            e.action,
            e.outcome,
            e.user_id,
            e.resource_type,
            e.resource_id,
            e.client,
            e.request_id,
        )


# --- service ------------------------------------------------------------------------------


class StatusOut(msgspec.Struct, frozen=True):
    status: str


class ReadinessOut(msgspec.Struct, frozen=True):
    status: str  # ready, unavailable
    checks: dict[str, str]  # each dependency: ok, unavailable


def _blank_is_none(value: str | None) -> str | None:
    # Clients of the seed service send "" for an empty optional field.
    return None if value is None or not value.strip() else value


# --- partial updates (PATCH) ---------------------------------------------------------------
# The fields of PatientIn and DoctorIn, each optional: absent is unchanged, null clears an
# optional field (and is a 400 on a required one), as JSON Merge Patch (RFC 7396) has it.


class PatientPatchIn(RequestBody):
    read_only = RECORD_READ_ONLY

    name: Name | msgspec.UnsetType = msgspec.UNSET
    age: Age | msgspec.UnsetType = msgspec.UNSET
    gender: GenderIn | msgspec.UnsetType = msgspec.UNSET
    phone: OptionalPhone | msgspec.UnsetType = msgspec.UNSET
    email: OptionalEmail | msgspec.UnsetType = msgspec.UNSET
    address: OptionalAddress | msgspec.UnsetType = msgspec.UNSET
    notes: OptionalNotes | msgspec.UnsetType = msgspec.UNSET

    def changes(self) -> dict[str, object]:
        return _changes(self, optional=("phone", "email", "address", "notes"))


class DoctorPatchIn(RequestBody):
    read_only = RECORD_READ_ONLY

    name: Name | msgspec.UnsetType = msgspec.UNSET
    specialization: Name | msgspec.UnsetType = msgspec.UNSET
    email: OptionalEmail | msgspec.UnsetType = msgspec.UNSET
    phone: OptionalPhone | msgspec.UnsetType = msgspec.UNSET

    def changes(self) -> dict[str, object]:
        return _changes(self, optional=("email", "phone"))


def _changes(body: RequestBody, optional: tuple[str, ...]) -> dict[str, object]:
    """The fields the client sent, for the domain's patch rules; a blank optional is null."""
    changes: dict[str, object] = {}
    for field in body.__struct_fields__:
        value = getattr(body, field)
        if value is msgspec.UNSET:
            continue
        if field in optional and isinstance(value, str):
            value = _blank_is_none(value)
        changes[field] = value
    return changes
