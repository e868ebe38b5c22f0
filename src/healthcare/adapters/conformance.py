"""Every adapter against the port it implements, for mypy to prove.

The ports are protocols, and nothing at run time compares an adapter with its port: the
container hands adapters to the use cases untyped. Below, each port's adapters are put in
a list of that port's type, so an adapter whose method drifts from the port fails
``make lint`` here, mypy naming the member and both signatures. The function is never
called; its parameters only give mypy an instance of each adapter.

A new adapter is listed here: tests/unit/test_conformance.py fails until it is (it looks
for the adapters the container wires, and every repository and unit of work).
"""

from __future__ import annotations

from healthcare.adapters.audit_trail import BufferedAuditTrail
from healthcare.adapters.clock import SystemClock
from healthcare.adapters.persistence.memory.probe import MemoryProbe
from healthcare.adapters.persistence.memory.unit_of_work import (
    MemoryAuditRepository,
    MemoryDoctorRepository,
    MemoryMappingRepository,
    MemoryPatientRepository,
    MemoryRefreshSessionRepository,
    MemoryUnitOfWork,
    MemoryUserRepository,
)
from healthcare.adapters.persistence.sqlalchemy.audit import SqlAlchemyAuditRepository
from healthcare.adapters.persistence.sqlalchemy.probe import PoolProbe
from healthcare.adapters.persistence.sqlalchemy.repositories import (
    SqlAlchemyDoctorRepository,
    SqlAlchemyMappingRepository,
    SqlAlchemyPatientRepository,
    SqlAlchemyRefreshSessionRepository,
    SqlAlchemyUserRepository,
)
from healthcare.adapters.persistence.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork
from healthcare.adapters.security.passwords import BcryptPasswordHasher
from healthcare.adapters.security.revocations import RevocationList
from healthcare.adapters.security.tokens import JwtTokenService
from healthcare.adapters.throttling.counters import Counters, MemoryCounters, RedisCounters
from healthcare.adapters.throttling.login import CountingLoginThrottle
from healthcare.adapters.throttling.probe import RedisProbe
from healthcare.application.ports import (
    AccessTokenRevocations,
    AuditRepository,
    AuditTrail,
    Clock,
    DependencyProbe,
    DoctorRepository,
    LoginThrottle,
    MappingRepository,
    PasswordHasher,
    PatientRepository,
    RefreshSessionRepository,
    TokenService,
    UnitOfWork,
    UserRepository,
)


def _every_adapter_satisfies_its_port(
    *,
    sql_unit_of_work: SqlAlchemyUnitOfWork,
    sql_users: SqlAlchemyUserRepository,
    sql_patients: SqlAlchemyPatientRepository,
    sql_doctors: SqlAlchemyDoctorRepository,
    sql_mappings: SqlAlchemyMappingRepository,
    sql_refresh_sessions: SqlAlchemyRefreshSessionRepository,
    sql_audit: SqlAlchemyAuditRepository,
    sql_probe: PoolProbe,
    memory_unit_of_work: MemoryUnitOfWork,
    memory_users: MemoryUserRepository,
    memory_patients: MemoryPatientRepository,
    memory_doctors: MemoryDoctorRepository,
    memory_mappings: MemoryMappingRepository,
    memory_refresh_sessions: MemoryRefreshSessionRepository,
    memory_audit: MemoryAuditRepository,
    memory_probe: MemoryProbe,
    buffered_audit_trail: BufferedAuditTrail,
    system_clock: SystemClock,
    bcrypt_hasher: BcryptPasswordHasher,
    jwt_tokens: JwtTokenService,
    revocation_list: RevocationList,
    counting_throttle: CountingLoginThrottle,
    memory_counters: MemoryCounters,
    redis_counters: RedisCounters,
    redis_probe: RedisProbe,
) -> None:
    _unit_of_work: list[UnitOfWork] = [sql_unit_of_work, memory_unit_of_work]
    _users: list[UserRepository] = [sql_users, memory_users]
    _patients: list[PatientRepository] = [sql_patients, memory_patients]
    _doctors: list[DoctorRepository] = [sql_doctors, memory_doctors]
    _mappings: list[MappingRepository] = [sql_mappings, memory_mappings]
    _refresh_sessions: list[RefreshSessionRepository] = [
        sql_refresh_sessions,
        memory_refresh_sessions,
    ]
    _audit: list[AuditRepository] = [sql_audit, memory_audit]
    _probe: list[DependencyProbe] = [sql_probe, memory_probe, redis_probe]
    _audit_trail: list[AuditTrail] = [buffered_audit_trail]
    _clock: list[Clock] = [system_clock]
    _password_hasher: list[PasswordHasher] = [bcrypt_hasher]
    _token_service: list[TokenService] = [jwt_tokens]
    _revocations: list[AccessTokenRevocations] = [revocation_list]
    _login_throttle: list[LoginThrottle] = [counting_throttle]
    _counters: list[Counters] = [memory_counters, redis_counters]  # adapters/throttling's port
