"""The unit of work over one SQLAlchemy Core connection: the only thing that commits."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Self

from healthcare.adapters.persistence.sqlalchemy.audit import SqlAlchemyAuditRepository
from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.adapters.persistence.sqlalchemy.repositories import (
    SqlAlchemyDoctorRepository,
    SqlAlchemyMappingRepository,
    SqlAlchemyPatientRepository,
    SqlAlchemyRefreshSessionRepository,
    SqlAlchemyUserRepository,
)
from healthcare.adapters.persistence.sqlalchemy.transaction import Transaction
from healthcare.domain.audit import AuditEvent


class SqlAlchemyUnitOfWork:
    """One transaction per ``async with``; the instance may be entered again afterwards.

    Nothing is kept unless ``commit`` is called inside the block. The repositories run Core
    statements on one connection, checked out at the first statement (see transaction.py
    for when the transaction begins).
    """

    users: SqlAlchemyUserRepository
    patients: SqlAlchemyPatientRepository
    doctors: SqlAlchemyDoctorRepository
    mappings: SqlAlchemyMappingRepository
    refresh_sessions: SqlAlchemyRefreshSessionRepository
    audit: SqlAlchemyAuditRepository

    def __init__(self, database: Database) -> None:
        self._database = database
        self._transaction: Transaction | None = None
        self._final_event_committed = False  # of the unit that ended last

    async def __aenter__(self) -> Self:
        if self._transaction is not None:
            # Sharing one instance between concurrent tasks would mix their transactions.
            raise RuntimeError("This unit of work is already in use")
        transaction = self._transaction = self._database.transaction()
        self._final_event_committed = False
        self.users = SqlAlchemyUserRepository(transaction)
        self.patients = SqlAlchemyPatientRepository(transaction)
        self.doctors = SqlAlchemyDoctorRepository(transaction)
        self.mappings = SqlAlchemyMappingRepository(transaction)
        self.refresh_sessions = SqlAlchemyRefreshSessionRepository(transaction)
        self.audit = SqlAlchemyAuditRepository(transaction)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is not None:
            self._final_event_committed = transaction.final_row_committed
            # Closing rolls back whatever was not committed and returns the connection to
            # the pool; shielded so a cancelled request cannot leave that half done.
            await asyncio.shield(transaction.close())

    def _entered(self) -> Transaction:
        if self._transaction is None:
            raise RuntimeError("The unit of work has not been entered")
        return self._transaction

    async def commit(self) -> None:
        await self._entered().commit()

    def commit_with_next_write(self, event: AuditEvent) -> None:
        self.audit.add_with_next_write(event)

    @property
    def final_event_committed(self) -> bool:
        if self._transaction is not None:
            return self._transaction.final_row_committed
        return self._final_event_committed

    async def rollback(self) -> None:
        await self._entered().rollback()
