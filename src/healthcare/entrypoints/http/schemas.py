"""Request and response bodies (msgspec structs) and their mapping to and from the domain.

Constraints here document the API in OpenAPI and stop malformed input early; the domain's
rules (healthcare.domain.rules) remain the authority, so every entrypoint is held to them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar.openapi.spec import OpenAPIType

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
    ``constraints`` are OpenAPI Schema attributes (``max_length``, ``any_of``...); they
    replace what Litestar would derive from the type (``T | None``, ``T | UnsetType``).
    """
    schema: dict[str, object] = {"extra": {"one_of": None, **constraints}}
    if description:
        schema["description"] = description
    return msgspec.Meta(extra_json_schema=schema)


def _text(max_length: int, pattern: str = rules.TEXT_PATTERN) -> dict[str, object]:
    # (A plain JSON Schema: Litestar renders Schema objects nested in extras unaliased.)
    return {"type": "string", "maxLength": max_length, "pattern": pattern}


def required_text(max_length: int, description: str | None = None) -> msgspec.Meta:
    """Text that must have a character that is not a space; no U+0000."""
    return documented(
        description,
        type=OpenAPIType.STRING,
        min_length=1,
        max_length=max_length,
        pattern=rules.REQUIRED_TEXT_PATTERN,
    )


# An optional field may be absent, null, "" or only spaces (all stored as null), or a value.
BLANK_IS_NULL = 'Optional: absent, null, "" or only spaces all mean none (stored as null).'
_BLANK = {"type": "string", "pattern": rules.BLANK_PATTERN}
_NULL = {"type": "null"}


def optional_text(max_length: int, description: str = "") -> msgspec.Meta:
    return documented(
        f"{description} {BLANK_IS_NULL}".strip(),
        any_of=[_text(max_length), _BLANK, _NULL],
    )


EMAIL_SCHEMA = _text(rules.EMAIL_MAX, rules.EMAIL_PATTERN)
_EMAIL_RULE = "An email address: one @, no spaces, a dot in the domain, at most 254 characters."


Name = Annotated[str, required_text(rules.NAME_MAX)]
OptionalEmail = Annotated[
    str | None, documented(f"{_EMAIL_RULE} {BLANK_IS_NULL}", any_of=[EMAIL_SCHEMA, _BLANK, _NULL])
]
OptionalPhone = Annotated[str | None, optional_text(rules.PHONE_MAX)]


# What a client may send back unchanged from a response; ignored, never stored.
RECORD_READ_ONLY = frozenset({"id", "created_by", "created_at", "updated_at"})


# --- accounts -----------------------------------------------------------------------------


PASSWORD_RULES = (
    "At least 8 characters and not all digits (the pattern), at most 72 bytes in UTF-8 "  # noqa: S105
    "(bcrypt's limit: longer is refused, never cut), no U+0000, and not the username in "
    "any letter case."
)
Password = Annotated[
    str,
    documented(
        PASSWORD_RULES,
        type=OpenAPIType.STRING,
        min_length=rules.PASSWORD_MIN_CHARS,
        pattern=rules.PASSWORD_PATTERN,
    ),
]


class RegisterIn(RequestBody, frozen=True):
    # Without a username (absent, null or blank), the email is the username, so it must
    # also be one.
    document = {
        "any_of": [
            {
                "required": ["username"],
                "properties": {"username": {"type": "string", "pattern": rules.USERNAME_PATTERN}},
            },
            {
                "properties": {
                    "email": {
                        "minLength": rules.USERNAME_MIN,
                        "maxLength": rules.USERNAME_MAX,
                        "pattern": rules.USERNAME_PATTERN,
                    }
                }
            },
        ]
    }
    email: Annotated[
        str,
        documented(
            _EMAIL_RULE,
            type=OpenAPIType.STRING,
            max_length=rules.EMAIL_MAX,
            pattern=rules.EMAIL_PATTERN,
        ),
    ]
    password: Password
    username: Annotated[
        str | None,
        documented(
            "3 to 150 letters (of any script), digits and @.+-_; unique regardless of case. "
            'Absent, null, "" or only spaces: the email is the username, under the same '
            "rules.",
            any_of=[
                {
                    "type": "string",
                    "minLength": rules.USERNAME_MIN,
                    "maxLength": rules.USERNAME_MAX,
                    "pattern": rules.USERNAME_PATTERN,
                },
                _BLANK,
                _NULL,
            ],
        ),
    ] = None

    @property
    def chosen_username(self) -> str | None:
        return _blank_is_none(self.username)


class LoginIn(RequestBody, frozen=True):
    """Sign in with ``username`` (which may also be the email) or ``email``: one of them
    must be given (not blank, as every optional field); with both, ``username`` is used."""

    document = {
        "any_of": [
            {
                "required": [name],
                "properties": {name: {"type": "string", "pattern": f"[^{rules.SPACES}]"}},
            }
            for name in ("username", "email")
        ]
    }

    password: str
    username: Annotated[str | None, msgspec.Meta(description="The username, or the email")] = None
    email: Annotated[
        str | None, msgspec.Meta(description="The email, when username is not given")
    ] = None

    @property
    def identifier(self) -> str | None:
        """The username, else the email; None when neither is given."""
        return _blank_is_none(self.username) or _blank_is_none(self.email)


class RefreshIn(RequestBody, frozen=True):
    refresh: str


class PasswordChangeIn(RequestBody, frozen=True):
    current_password: str
    new_password: Password


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
Age = Annotated[
    int,
    documented(type=OpenAPIType.INTEGER, minimum=rules.AGE_MIN, maximum=rules.AGE_MAX),
]
GenderIn = Annotated[
    str,
    documented(
        "Male, Female, Other or Unknown, in any letter case (spaces around are ignored); "
        "answered capitalised",
        type=OpenAPIType.STRING,
        pattern=rules.GENDER_PATTERN,
    ),
]
OptionalAddress = Annotated[str | None, optional_text(rules.ADDRESS_MAX)]
OptionalNotes = Annotated[str | None, optional_text(rules.NOTES_MAX)]


class PatientIn(RequestBody, frozen=True):
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


class DoctorIn(RequestBody, frozen=True):
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


class MappingIn(RequestBody, frozen=True):
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


class PatientPatchIn(RequestBody, frozen=True):
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


class DoctorPatchIn(RequestBody, frozen=True):
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


# A PATCH without a body: read as {}, as DRF reads no body (nothing changes).
NO_PATIENT_CHANGES = PatientPatchIn()
NO_DOCTOR_CHANGES = DoctorPatchIn()
