"""The composition root: the one place that picks adapters and builds use cases."""

from __future__ import annotations

import inspect
import logging
import os
from typing import Any

from dependency_injector import containers, providers
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from healthcare.adapters.audit_trail import BufferedAuditTrail
from healthcare.adapters.clock import SystemClock
from healthcare.adapters.persistence.memory import MemoryStore, MemoryUnitOfWork
from healthcare.adapters.persistence.memory.probe import MemoryProbe
from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.adapters.persistence.sqlalchemy.probe import PoolProbe
from healthcare.adapters.persistence.sqlalchemy.revocation_feed import RevocationFeed
from healthcare.adapters.persistence.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from healthcare.adapters.security.passwords import BcryptPasswordHasher
from healthcare.adapters.security.revocations import RevocationList
from healthcare.adapters.security.tokens import JwtTokenService
from healthcare.adapters.throttling.counters import MemoryCounters, RedisCounters
from healthcare.adapters.throttling.login import CountingLoginThrottle
from healthcare.adapters.throttling.probe import RedisProbe
from healthcare.application import (
    auth,
    bulk,
    doctors,
    health,
    mappings,
    patients,
    records,
    users,
)
from healthcare.application.audit import Auditor, ListAuditEvents
from healthcare.application.ports import (
    Clock,
    DependencyProbe,
    LoginThrottle,
    PasswordHasher,
    TokenService,
    UnitOfWork,
)
from healthcare.entrypoints.settings import Settings

log = logging.getLogger(__name__)


def hash_threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Each server worker's share of the cores for bcrypt: all workers' hashes together run
    on at most one thread per core (and each worker on at least one).

    More threads than cores cannot hash faster; they only leave other requests fewer idle
    moments. Measured during a login storm at two workers on two cores, reads' p99 rose
    2.2-2.3 times with one hashing thread per worker, 3.1-3.2 times with two, at the same
    login throughput.
    """
    return max(1, (cores or os.cpu_count() or 1) // workers)


class Container(containers.DeclarativeContainer):
    """Every adapter and use case. A use case is registered here and nowhere else: the HTTP
    app serves every Factory of a class of healthcare.application (``use_cases``), and the
    unit tests build their core from this container too (tests/unit/factories.py).

    Providers a use case receives are typed with the port, so that what replaces them
    (``build_container``'s fakes) is held to the port as well.
    """

    settings = providers.Dependency(instance_of=Settings)

    clock: providers.Provider[Clock] = providers.Singleton(SystemClock)
    password_hasher: providers.Provider[PasswordHasher] = providers.Singleton(
        BcryptPasswordHasher,
        rounds=settings.provided.bcrypt_rounds,
        threads=providers.Callable(hash_threads_per_worker, settings.provided.workers),
    )
    # The access tokens this worker refuses before they expire (one dict, read per request).
    revocations = providers.Singleton(RevocationList)
    token_service: providers.Provider[TokenService] = providers.Singleton(
        JwtTokenService,
        secret=settings.provided.secret_key,
        clock=clock,
        access_lifetime=settings.provided.access_token_lifetime,
        refresh_lifetime=settings.provided.refresh_token_lifetime,
        revocations=revocations,
    )

    # Persistence: DATABASE_URL=memory:// selects the in-memory adapter, anything else SQL.
    database = providers.Singleton(
        Database,
        settings.provided.database_url,
        pool_size=settings.provided.db_pool_size,
        pool_timeout_seconds=settings.provided.db_pool_timeout,
        statement_timeout_ms=settings.provided.db_statement_timeout_ms,
        lock_timeout_ms=settings.provided.db_lock_timeout_ms,
    )
    memory_store = providers.Singleton(MemoryStore)
    unit_of_work: providers.Provider[UnitOfWork] = providers.Selector(
        settings.provided.persistence,
        sqlalchemy=providers.Factory(SqlAlchemyUnitOfWork, database),
        memory=providers.Factory(MemoryUnitOfWork, memory_store),
    )
    # How the other workers' revocations reach this one (memory: there are no others).
    revocation_feed = providers.Selector(
        settings.provided.persistence,
        sqlalchemy=providers.Singleton(
            RevocationFeed,
            settings.provided.database_url,
            database.provided.engine,
            revocations,
            window=settings.provided.access_token_lifetime,
            resync_seconds=settings.provided.revocation_resync_seconds,
        ),
        memory=providers.Object(None),
    )
    database_probe: providers.Provider[DependencyProbe] = providers.Selector(
        settings.provided.persistence,
        sqlalchemy=providers.Singleton(PoolProbe, database),
        memory=providers.Singleton(MemoryProbe),
    )

    # Events of reads and refusals are written in batches; those of changes go with the change.
    audit_trail = providers.Singleton(
        BufferedAuditTrail,
        unit_of_work.provider,
        interval=settings.provided.audit_flush_seconds,
    )
    auditor = providers.Singleton(Auditor, audit_trail, clock)

    # Throttling: REDIS_URL shares the counters across workers and machines. Every call to
    # Redis is bounded: REDIS_TIMEOUT_MS to connect and to answer, and one retry (on a fresh
    # connection, which heals a connection that Redis dropped); past that, a 503.
    redis = providers.Singleton(
        Redis.from_url,
        settings.provided.redis_url,
        socket_connect_timeout=settings.provided.redis_timeout_seconds,
        socket_timeout=settings.provided.redis_timeout_seconds,
        retry=providers.Factory(Retry, providers.Factory(NoBackoff), 1),
    )
    counters = providers.Selector(
        settings.provided.throttle_backend,
        redis=providers.Singleton(RedisCounters, redis),
        memory=providers.Singleton(MemoryCounters),
    )
    throttle_store_probe: providers.Provider[DependencyProbe | None] = providers.Selector(
        settings.provided.throttle_backend,
        redis=providers.Singleton(RedisProbe, redis),
        memory=providers.Object(None),
    )
    login_throttle: providers.Provider[LoginThrottle] = providers.Singleton(
        CountingLoginThrottle,
        counters,
        max_attempts_per_username=settings.provided.login_attempts_per_username,
        max_failures_per_client=settings.provided.login_failures_per_client,
        window_seconds=settings.provided.login_window_seconds,
        refusal_delay_seconds=settings.provided.login_refusal_delay_seconds,
    )

    register_user = providers.Factory(auth.RegisterUser, unit_of_work, password_hasher, auditor)
    login_user = providers.Factory(
        auth.Login,
        unit_of_work,
        password_hasher,
        token_service,
        clock,
        throttle=login_throttle,
        auditor=auditor,
    )
    refresh_tokens = providers.Factory(
        auth.RefreshTokens,
        unit_of_work,
        token_service,
        clock,
        auditor,
        rotate=settings.provided.refresh_token_rotation,
    )
    logout_user = providers.Factory(auth.Logout, unit_of_work, token_service, clock, auditor)
    get_current_user = providers.Factory(auth.GetCurrentUser, unit_of_work)
    change_password = providers.Factory(
        auth.ChangePassword,
        unit_of_work,
        password_hasher,
        clock,
        auditor,
        throttle=login_throttle,
        revocations=revocations,
    )
    set_user_active = providers.Factory(
        auth.SetUserActive, unit_of_work, clock, auditor, revocations=revocations
    )

    # Account management by an administrator (the admin interface and the command line).
    list_users = providers.Factory(users.ListUsers, unit_of_work, auditor)
    get_user = providers.Factory(users.GetUser, unit_of_work, auditor)
    create_user = providers.Factory(users.CreateUser, unit_of_work, password_hasher, auditor)
    set_user_staff = providers.Factory(users.SetUserStaff, unit_of_work, auditor)
    set_user_email = providers.Factory(users.SetUserEmail, unit_of_work, auditor)
    set_user_password = providers.Factory(
        users.SetUserPassword,
        unit_of_work,
        password_hasher,
        clock,
        auditor,
        revocations=revocations,
    )

    create_patient = providers.Factory(patients.CreatePatient, unit_of_work, auditor)
    list_patients = providers.Factory(patients.ListPatients, unit_of_work, auditor)
    get_patient = providers.Factory(patients.GetPatient, unit_of_work, auditor)
    update_patient = providers.Factory(patients.UpdatePatient, unit_of_work, auditor)
    patch_patient = providers.Factory(patients.PatchPatient, unit_of_work, auditor)
    delete_patient = providers.Factory(patients.DeletePatient, unit_of_work, auditor)

    create_doctor = providers.Factory(doctors.CreateDoctor, unit_of_work)
    list_doctors = providers.Factory(doctors.ListDoctors, unit_of_work)
    get_doctor = providers.Factory(doctors.GetDoctor, unit_of_work)
    update_doctor = providers.Factory(doctors.UpdateDoctor, unit_of_work)
    patch_doctor = providers.Factory(doctors.PatchDoctor, unit_of_work)
    delete_doctor = providers.Factory(doctors.DeleteDoctor, unit_of_work)

    assign_doctor = providers.Factory(mappings.AssignDoctorToPatient, unit_of_work, auditor)
    list_mappings = providers.Factory(mappings.ListMappings, unit_of_work, auditor)
    list_patient_mappings = providers.Factory(mappings.ListPatientMappings, unit_of_work, auditor)
    list_patient_doctors = providers.Factory(mappings.ListPatientDoctors, unit_of_work, auditor)
    unassign_doctor = providers.Factory(mappings.UnassignDoctor, unit_of_work, auditor)

    list_audit_events = providers.Factory(ListAuditEvents, unit_of_work, auditor)

    # Who acts on the command line, and bulk import/export.
    identify_administrator = providers.Factory(records.IdentifyAdministrator, unit_of_work)
    import_patients = providers.Factory(bulk.ImportPatients, unit_of_work, auditor)
    import_doctors = providers.Factory(bulk.ImportDoctors, unit_of_work, auditor)
    export_patients = providers.Factory(bulk.ExportPatients, unit_of_work, auditor)
    export_doctors = providers.Factory(bulk.ExportDoctors, unit_of_work, auditor)
    export_mappings = providers.Factory(bulk.ExportMappings, unit_of_work, auditor)

    check_readiness = providers.Factory(health.CheckReadiness, database_probe, throttle_store_probe)


def build_container(
    settings: Settings,
    *,
    clock: Clock | None = None,
    password_hasher: PasswordHasher | None = None,
    memory_store: MemoryStore | None = None,
) -> Container:
    """The container for ``settings``; tests give fakes for the clock and the hasher, and a
    store of their own to read (as cosmicpython's ``bootstrap`` takes its fakes).

    The replacements are overrides of this container's own providers: each container is a
    copy of the declaration, so overriding one leaves every other container as it was.
    """
    container = Container(settings=settings)
    if clock is not None:
        container.clock.override(providers.Object(clock))
    if password_hasher is not None:
        container.password_hasher.override(providers.Object(password_hasher))
    if memory_store is not None:
        container.memory_store.override(providers.Object(memory_store))
    container.check_dependencies()
    return container


def use_cases(container: Container) -> dict[str, providers.Factory[Any]]:
    """The use cases, by provider name: every Factory whose class is in healthcare.application.

    Adapters (the units of work behind the persistence selector) and the application's
    singletons (the auditor) are not use cases.
    """
    return {
        name: provider
        for name, provider in container.providers.items()
        if isinstance(provider, providers.Factory)
        and inspect.isclass(provider.provides)
        and provider.provides.__module__.startswith("healthcare.application.")
    }


async def close_container(container: Container) -> None:
    """Write what the audit trail still holds, then release what the container opened."""
    feed = container.revocation_feed()
    if isinstance(feed, RevocationFeed):
        await feed.close()
    trail = container.audit_trail()
    try:
        await trail.close()
    except Exception:
        # The database is away: say what is lost, and still release everything else.
        log.exception("Stopping with %d audit events that could not be written", trail.pending)
    hasher = container.password_hasher()
    if isinstance(hasher, BcryptPasswordHasher):  # its threads; a test's fake has none
        hasher.close()
    if container.settings().persistence == "sqlalchemy":
        await container.database().dispose()
    if container.settings().throttle_backend == "redis":
        await container.redis().aclose()
