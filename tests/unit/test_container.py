"""The composition root: one place registers a use case; overrides stay in their container."""

from __future__ import annotations

from dependency_injector import providers
from litestar.di import Provide

from healthcare.adapters.clock import SystemClock
from healthcare.adapters.persistence.memory import MemoryStore
from healthcare.application import health
from healthcare.application.auth import RefreshTokens
from healthcare.entrypoints.container import Container, build_container, use_cases
from healthcare.entrypoints.http.app import create_app
from tests.unit.factories import UNIT_SETTINGS, Core
from tests.unit.fakes import FakePasswordHasher, FixedClock


class WithANewUseCase(Container):
    check_again = providers.Factory(health.CheckReadiness, Container.database_probe)


def test_a_use_case_added_to_the_container_is_served_without_editing_the_app() -> None:
    container = WithANewUseCase(settings=UNIT_SETTINGS)

    dependencies = create_app(container).dependencies

    provide = dependencies["check_again"]
    assert isinstance(provide, Provide)
    served = provide.dependency()
    assert isinstance(served, health.CheckReadiness)


def test_use_cases_are_the_factories_of_application_classes_only() -> None:
    found = use_cases(build_container(UNIT_SETTINGS))

    assert {"register_user", "refresh_tokens", "list_audit_events", "check_readiness"} <= set(found)
    # Adapters behind the persistence selector, the auditor and the settings are not.
    assert not {"unit_of_work", "auditor", "audit_trail", "settings"} & set(found)
    assert all(
        provider.provides.__module__.startswith("healthcare.") for provider in found.values()
    )


def test_overrides_stay_in_the_container_they_were_given_to() -> None:
    clock, hasher, store = FixedClock(), FakePasswordHasher(), MemoryStore()
    faked = build_container(UNIT_SETTINGS, clock=clock, password_hasher=hasher, memory_store=store)
    plain = build_container(UNIT_SETTINGS)

    assert (faked.clock(), faked.password_hasher(), faked.memory_store()) == (clock, hasher, store)
    assert isinstance(plain.clock(), SystemClock)
    assert plain.memory_store() is not store
    assert plain.password_hasher.last_overriding is None
    # Nor does anything reach the declaration, from which later containers are copied.
    for provider in (Container.clock, Container.password_hasher, Container.memory_store):
        assert provider.last_overriding is None
    assert isinstance(build_container(UNIT_SETTINGS).clock(), SystemClock)


async def test_the_rotating_container_is_the_same_core_with_rotation_on() -> None:
    core = Core()
    user, password = await core.sign_up()
    pair = await core.container.login_user()(user.username, password)

    kept = await core.container.refresh_tokens()(pair.refresh)
    rotated = await core.rotating.refresh_tokens()(pair.refresh)

    assert isinstance(core.rotating.refresh_tokens(), RefreshTokens)
    assert kept.refresh is None  # the client keeps its token
    assert rotated.refresh is not None  # the same session, in the same store, rotated
    assert core.rotating.memory_store() is core.store
    assert core.rotating.clock() is core.clock
