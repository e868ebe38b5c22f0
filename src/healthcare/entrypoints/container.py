"""The composition root: the one place that picks adapters and builds use cases."""

from __future__ import annotations

import logging
import os

from dependency_injector import containers, providers
from redis.asyncio import Redis

from healthcare.adapters.audit_trail import BufferedAuditTrail
from healthcare.adapters.clock import SystemClock
from healthcare.adapters.persistence.memory import MemoryStore, MemoryUnitOfWork
from healthcare.adapters.persistence.memory.probe import MemoryProbe
from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.adapters.persistence.sqlalchemy.probe import EngineProbe
from healthcare.adapters.persistence.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from healthcare.adapters.security.passwords import BcryptPasswordHasher
from healthcare.adapters.security.tokens import JwtTokenService
from healthcare.adapters.throttling.counters import MemoryCounters, RedisCounters
from healthcare.adapters.throttling.login import CountingLoginThrottle
from healthcare.application import auth, doctors, health, mappings, patients
from healthcare.application.audit import Auditor, ListAuditEvents
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
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    password_hasher = providers.Singleton(
        BcryptPasswordHasher,
        rounds=settings.provided.bcrypt_rounds,
        threads=providers.Callable(hash_threads_per_worker, settings.provided.workers),
    )
    token_service = providers.Singleton(
        JwtTokenService,
        secret=settings.provided.secret_key,
        clock=clock,
        access_lifetime=settings.provided.access_token_lifetime,
        refresh_lifetime=settings.provided.refresh_token_lifetime,
    )

    # Persistence: DATABASE_URL=memory:// selects the in-memory adapter, anything else SQL.
    database = providers.Singleton(
        Database,
        settings.provided.database_url,
        pool_size=settings.provided.db_pool_size,
        pool_timeout_seconds=settings.provided.db_pool_timeout,
    )
    memory_store = providers.Singleton(MemoryStore)
    unit_of_work = providers.Selector(
        settings.provided.persistence,
        sqlalchemy=providers.Factory(SqlAlchemyUnitOfWork, database),
        memory=providers.Factory(MemoryUnitOfWork, memory_store),
    )
    database_probe = providers.Selector(
        settings.provided.persistence,
        sqlalchemy=providers.Singleton(EngineProbe, database.provided.engine),
        memory=providers.Singleton(MemoryProbe),
    )

    # Events of reads and refusals are written in batches; those of changes go with the change.
    audit_trail = providers.Singleton(
        BufferedAuditTrail,
        unit_of_work.provider,
        interval=settings.provided.audit_flush_seconds,
    )
    auditor = providers.Singleton(Auditor, audit_trail, clock)

    # Throttling: REDIS_URL shares the counters across workers and machines.
    redis = providers.Singleton(Redis.from_url, settings.provided.redis_url)
    counters = providers.Selector(
        settings.provided.throttle_backend,
        redis=providers.Singleton(RedisCounters, redis),
        memory=providers.Singleton(MemoryCounters),
    )
    login_throttle = providers.Singleton(
        CountingLoginThrottle,
        counters,
        max_attempts_per_username=settings.provided.login_attempts_per_username,
        max_failures_per_client=settings.provided.login_failures_per_client,
        window_seconds=settings.provided.login_window_seconds,
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
        auth.ChangePassword, unit_of_work, password_hasher, clock, auditor
    )
    set_user_active = providers.Factory(auth.SetUserActive, unit_of_work, clock, auditor)

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

    check_readiness = providers.Factory(health.CheckReadiness, database_probe)


def build_container(settings: Settings) -> Container:
    container = Container(settings=settings)
    container.check_dependencies()
    return container


async def close_container(container: Container) -> None:
    """Write what the audit trail still holds, then release what the container opened."""
    trail = container.audit_trail()
    try:
        await trail.close()
    except Exception:
        # The database is away: say what is lost, and still release everything else.
        log.exception("Stopping with %d audit events that could not be written", trail.pending)
    container.password_hasher().close()
    if container.settings().persistence == "sqlalchemy":
        await container.database().dispose()
    if container.settings().throttle_backend == "redis":
        await container.redis().aclose()
