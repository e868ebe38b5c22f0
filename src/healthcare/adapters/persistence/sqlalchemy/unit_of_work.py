"""The unit of work over one SQLAlchemy session: the only thing that commits."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from healthcare.adapters.persistence.sqlalchemy.audit import SqlAlchemyAuditRepository
from healthcare.adapters.persistence.sqlalchemy.repositories import (
    SqlAlchemyDoctorRepository,
    SqlAlchemyMappingRepository,
    SqlAlchemyPatientRepository,
    SqlAlchemyRefreshSessionRepository,
    SqlAlchemyUserRepository,
)


class SqlAlchemyUnitOfWork:
    """One transaction per ``async with``; the instance may be entered again afterwards.

    Nothing is kept unless ``commit`` is called inside the block.
    """

    users: SqlAlchemyUserRepository
    patients: SqlAlchemyPatientRepository
    doctors: SqlAlchemyDoctorRepository
    mappings: SqlAlchemyMappingRepository
    refresh_sessions: SqlAlchemyRefreshSessionRepository
    audit: SqlAlchemyAuditRepository

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        if self._session is not None:
            # Sharing one instance between concurrent tasks would mix their transactions.
            raise RuntimeError("This unit of work is already in use")
        session = self._session = self._session_factory()
        self.users = SqlAlchemyUserRepository(session)
        self.patients = SqlAlchemyPatientRepository(session)
        self.doctors = SqlAlchemyDoctorRepository(session)
        self.mappings = SqlAlchemyMappingRepository(session)
        self.refresh_sessions = SqlAlchemyRefreshSessionRepository(session)
        self.audit = SqlAlchemyAuditRepository(session)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            # Closing rolls back whatever was not committed and returns the connection to
            # the pool; shielded so a cancelled request cannot leave that half done.
            await asyncio.shield(session.close())

    def _entered(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("The unit of work has not been entered")
        return self._session

    async def commit(self) -> None:
        await self._entered().commit()

    async def rollback(self) -> None:
        await self._entered().rollback()
