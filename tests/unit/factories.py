"""Factories for inputs and a ready-made core (use cases over the in-memory adapter)."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field, replace
from typing import Any

from faker import Faker
from polyfactory import Use
from polyfactory.factories import DataclassFactory

from healthcare.adapters.audit_trail import BufferedAuditTrail
from healthcare.adapters.persistence.memory import MemoryStore, MemoryUnitOfWork
from healthcare.adapters.security.tokens import JwtTokenService
from healthcare.adapters.throttling.counters import MemoryCounters
from healthcare.adapters.throttling.login import CountingLoginThrottle
from healthcare.application.audit import Auditor, ListAuditEvents
from healthcare.application.auth import (
    ChangePassword,
    GetCurrentUser,
    Login,
    Logout,
    RefreshTokens,
    RegisterUser,
    SetUserActive,
)
from healthcare.application.doctors import (
    CreateDoctor,
    DeleteDoctor,
    GetDoctor,
    ListDoctors,
    PatchDoctor,
    UpdateDoctor,
)
from healthcare.application.mappings import (
    AssignDoctorToPatient,
    ListMappings,
    ListPatientDoctors,
    ListPatientMappings,
    UnassignDoctor,
)
from healthcare.application.patients import (
    CreatePatient,
    DeletePatient,
    GetPatient,
    ListPatients,
    PatchPatient,
    UpdatePatient,
)
from healthcare.domain.audit import AuditEvent
from healthcare.domain.entities import (
    Doctor,
    DoctorData,
    Gender,
    Patient,
    PatientData,
    Principal,
    RefreshSession,
    User,
)
from healthcare.domain.rules import AGE_MAX, AGE_MIN
from tests.unit.fakes import FakePasswordHasher, FixedClock

SECRET = "unit-test-signing-secret-of-at-least-32-bytes"


# Seeded, so every run builds the same records.
_fake = Faker()
_fake.seed_instance(1234)
_rng = random.Random(1234)


class PatientDataFactory(DataclassFactory[PatientData]):
    __check_model__ = False

    name = Use(_fake.name)
    age = Use(_rng.randint, AGE_MIN, AGE_MAX)
    gender = Use(_rng.choice, list(Gender))
    phone = Use(_fake.numerify, "+1 555 ### ####")
    email = Use(_fake.email)
    address = Use(_fake.address)
    notes = None


class DoctorDataFactory(DataclassFactory[DoctorData]):
    __check_model__ = False

    name = Use(lambda: f"Dr. {_fake.name()}")
    specialization = Use(
        _rng.choice, ["Cardiology", "Dermatology", "Neurology", "Paediatrics", "Oncology"]
    )
    email = Use(_fake.email)
    phone = Use(_fake.numerify, "+44 20 #### ####")


_sequence = itertools.count(1)


def registration(**overrides: Any) -> dict[str, Any]:
    """Valid, unique arguments for RegisterUser."""
    n = next(_sequence)
    values: dict[str, Any] = {
        "username": f"user{n}",
        "email": f"user{n}@example.com",
        "password": f"correct horse battery {n}",
    }
    return values | overrides


@dataclass
class Core:
    """Every use case, wired to one in-memory store, a fake hasher and a fixed clock."""

    store: MemoryStore = field(default_factory=MemoryStore)
    hasher: FakePasswordHasher = field(default_factory=FakePasswordHasher)
    clock: FixedClock = field(default_factory=FixedClock)

    def __post_init__(self) -> None:
        self.tokens = JwtTokenService(SECRET, self.clock)
        uow = self.uow
        # Not started, so every event is written as it is recorded.
        self.trail = BufferedAuditTrail(uow)
        audit = self.auditor = Auditor(self.trail, self.clock)
        self.register = RegisterUser(uow(), self.hasher, audit)
        self.throttle = CountingLoginThrottle(
            MemoryCounters(), max_attempts_per_username=1000, max_failures_per_client=1000
        )
        self.login = Login(
            uow(), self.hasher, self.tokens, self.clock, throttle=self.throttle, auditor=audit
        )
        self.refresh = RefreshTokens(uow(), self.tokens, self.clock, audit)
        self.rotating_refresh = RefreshTokens(uow(), self.tokens, self.clock, audit, rotate=True)
        self.logout = Logout(uow(), self.tokens, self.clock, audit)
        self.current_user = GetCurrentUser(uow())
        self.change_password = ChangePassword(uow(), self.hasher, self.clock, audit)
        self.set_active = SetUserActive(uow(), self.clock, audit)
        self.create_patient = CreatePatient(uow(), audit)
        self.list_patients = ListPatients(uow(), audit)
        self.get_patient = GetPatient(uow(), audit)
        self.update_patient = UpdatePatient(uow(), audit)
        self.patch_patient = PatchPatient(uow(), audit)
        self.delete_patient = DeletePatient(uow(), audit)
        self.create_doctor = CreateDoctor(uow())
        self.list_doctors = ListDoctors(uow())
        self.get_doctor = GetDoctor(uow())
        self.update_doctor = UpdateDoctor(uow())
        self.patch_doctor = PatchDoctor(uow())
        self.delete_doctor = DeleteDoctor(uow())
        self.assign = AssignDoctorToPatient(uow(), audit)
        self.list_mappings = ListMappings(uow(), audit)
        self.list_patient_mappings = ListPatientMappings(uow(), audit)
        self.list_patient_doctors = ListPatientDoctors(uow(), audit)
        self.unassign = UnassignDoctor(uow(), audit)
        self.list_audit = ListAuditEvents(uow(), audit)

    def uow(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self.store)

    async def sign_up(self, **overrides: Any) -> tuple[User, str]:
        """Register a user; return it with its plain password."""
        values = registration(**overrides)
        user = await self.register(**values)
        return user, values["password"]

    async def add_patient(self, principal: Principal, **overrides: Any) -> Patient:
        return await self.create_patient(principal, PatientDataFactory.build(**overrides))

    async def add_doctor(self, principal: Principal, **overrides: Any) -> Doctor:
        return await self.create_doctor(principal, DoctorDataFactory.build(**overrides))

    def audit_events(self) -> list[AuditEvent]:
        """Every committed audit event, oldest first."""
        return list(self.store.tables.audit_events.values())

    def users(self) -> list[User]:
        """Every committed user."""
        return list(self.store.tables.users.values())

    def session_of(self, refresh_token: str) -> RefreshSession:
        """The committed refresh session a refresh token belongs to."""
        claims = self.tokens.read_refresh(refresh_token)
        return self.store.tables.refresh_sessions[claims.session_id]

    def deactivate(self, user: User) -> None:
        # No use case deactivates an account yet (the admin interface will): edit the store.
        self.store.tables.users[user.id] = replace(user, is_active=False)
