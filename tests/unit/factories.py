"""Factories for inputs and a ready-made core (use cases over the in-memory adapter)."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from functools import cached_property
from typing import Any

from faker import Faker
from polyfactory import Use
from polyfactory.factories import DataclassFactory

from healthcare.adapters.persistence.memory import MemoryStore
from healthcare.application.audit import Auditor
from healthcare.application.ports import TokenService, UnitOfWork
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
from healthcare.entrypoints.container import Container, build_container
from healthcare.entrypoints.settings import MEMORY_URL, Settings
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


# The service's defaults, but throttles wide open (the tests that throttle build their own)
# and refusals answered at once (tests/unit/test_throttling.py times the delay).
UNIT_SETTINGS = Settings(
    database_url=MEMORY_URL,
    secret_key=SECRET,
    login_attempts_per_username=1000,
    login_failures_per_client=1000,
    login_refusal_delay_ms=0,
)


class Core:
    """The application's own container over the in-memory adapter, with a fake hasher and a
    fixed clock: the use cases are wired exactly as the HTTP app's are.

    A use case is had from the container by its provider's name, a fresh one per call as
    per request: ``await core.container.register_user()(...)``. The audit trail is not
    started, so every event is written as it is recorded.
    """

    def __init__(self, settings: Settings = UNIT_SETTINGS) -> None:
        self.store = MemoryStore()
        self.hasher = FakePasswordHasher()
        self.clock = FixedClock()
        self.container = self._build(settings)

    def _build(self, settings: Settings) -> Container:
        return build_container(
            settings, clock=self.clock, password_hasher=self.hasher, memory_store=self.store
        )

    @cached_property
    def rotating(self) -> Container:
        """The same core (store, clock, hasher, signing key) with REFRESH_TOKEN_ROTATION on."""
        return self._build(replace(self.container.settings(), refresh_token_rotation=True))

    @property
    def tokens(self) -> TokenService:
        return self.container.token_service()

    @property
    def auditor(self) -> Auditor:
        return self.container.auditor()

    def uow(self) -> UnitOfWork:
        return self.container.unit_of_work()

    async def sign_up(self, **overrides: Any) -> tuple[User, str]:
        """Register a user; return it with its plain password."""
        values = registration(**overrides)
        user = await self.container.register_user()(**values)
        return user, values["password"]

    async def add_patient(self, principal: Principal, **overrides: Any) -> Patient:
        create = self.container.create_patient()
        return await create(principal, PatientDataFactory.build(**overrides))

    async def add_doctor(self, principal: Principal, **overrides: Any) -> Doctor:
        create = self.container.create_doctor()
        return await create(principal, DoctorDataFactory.build(**overrides))

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
        # Straight into the store, without an administrator or an audit event.
        self.store.tables.users[user.id] = replace(user, is_active=False)
