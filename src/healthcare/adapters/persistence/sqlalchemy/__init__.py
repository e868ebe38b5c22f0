"""Persistence on PostgreSQL (psycopg) or SQLite (aiosqlite) through SQLAlchemy."""

from healthcare.adapters.persistence.sqlalchemy.engine import create_engine, normalise_url
from healthcare.adapters.persistence.sqlalchemy.migrations import (
    current,
    downgrade,
    head,
    upgrade,
)
from healthcare.adapters.persistence.sqlalchemy.repositories import (
    SqlAlchemyDoctorRepository,
    SqlAlchemyMappingRepository,
    SqlAlchemyPatientRepository,
    SqlAlchemyRefreshSessionRepository,
    SqlAlchemyUserRepository,
)
from healthcare.adapters.persistence.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork

__all__ = [
    "SqlAlchemyDoctorRepository",
    "SqlAlchemyMappingRepository",
    "SqlAlchemyPatientRepository",
    "SqlAlchemyRefreshSessionRepository",
    "SqlAlchemyUnitOfWork",
    "SqlAlchemyUserRepository",
    "create_engine",
    "current",
    "downgrade",
    "head",
    "normalise_url",
    "upgrade",
]
