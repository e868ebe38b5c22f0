"""Entities and value objects. Standard library only."""

from __future__ import annotations

from collections.abc import Mapping as _Mapping
from datetime import datetime
from enum import StrEnum
from typing import TypeAlias

from healthcare.domain.audit import NOWHERE, Origin
from healthcare.domain.errors import InvalidInput
from healthcare.domain.values import value_object


class Gender(StrEnum):
    MALE = "Male"
    FEMALE = "Female"
    OTHER = "Other"
    UNKNOWN = "Unknown"

    @classmethod
    def parse(cls, raw: str) -> Gender:
        """Accept any letter case; return the capitalised member."""
        member = _GENDERS.get(raw.strip().lower())
        if member is not None:
            return member
        allowed = ", ".join(m.value for m in cls)
        raise InvalidInput.single("gender", f"must be one of {allowed}")


_GENDERS = {member.value.lower(): member for member in Gender}


@value_object
class Principal:
    """Who is calling, as proven by an access token (no database needed), and from where."""

    user_id: int
    is_admin: bool = False
    origin: Origin = NOWHERE


@value_object
class User:
    id: int
    username: str
    email: str
    password_hash: str
    is_active: bool
    is_staff: bool
    is_superuser: bool
    date_joined: datetime
    updated_at: datetime

    @property
    def is_admin(self) -> bool:
        return self.is_staff or self.is_superuser

    def principal(self) -> Principal:
        return Principal(user_id=self.id, is_admin=self.is_admin)


@value_object
class NewUser:
    """A validated registration, with the password already hashed."""

    username: str
    email: str
    password_hash: str
    is_staff: bool = False
    is_superuser: bool = False


@value_object
class PatientData:
    """What a client writes about a patient."""

    name: str
    age: int
    gender: Gender
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    notes: str | None = None


# Some of PatientData's fields, by name, with their new values (rules.patient_changes checks
# them): what a partial update writes.
PatientChanges: TypeAlias = _Mapping[str, object]


@value_object
class Patient:
    id: int
    created_by: int
    name: str
    age: int
    gender: Gender
    phone: str | None
    email: str | None
    address: str | None
    notes: str | None
    created_at: datetime
    updated_at: datetime
    # Bumped by every change; a client that names the version it read (If-Match) changes
    # the record only if nobody else has since.
    version: int = 1

    def data(self) -> PatientData:
        return PatientData(
            self.name, self.age, self.gender, self.phone, self.email, self.address, self.notes
        )


@value_object
class DoctorData:
    """What a client writes about a doctor."""

    name: str
    specialization: str
    email: str | None = None
    phone: str | None = None


@value_object
class Doctor:
    id: int
    created_by: int | None
    name: str
    specialization: str
    email: str | None
    phone: str | None
    created_at: datetime
    updated_at: datetime
    version: int = 1  # as Patient.version

    def data(self) -> DoctorData:
        return DoctorData(self.name, self.specialization, self.email, self.phone)

    def may_be_changed_by(self, principal: Principal) -> bool:
        return principal.is_admin or self.created_by == principal.user_id


@value_object
class Mapping:
    """A patient assigned to a doctor, with the doctor's record for display."""

    id: int
    patient_id: int
    doctor: Doctor
    created_at: datetime
    updated_at: datetime


@value_object
class RefreshSession:
    """One login's chain of refresh tokens. Only ``current_jti`` may be spent next."""

    id: str
    user_id: int
    current_jti: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
