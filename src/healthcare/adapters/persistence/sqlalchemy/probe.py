"""Readiness: the database asked the way a request asks it."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.domain.errors import Unavailable

_SELECT_ONE = text("SELECT 1")


class PoolProbe:
    """One trivial read through the units of work's own pool (psycopg's on PostgreSQL), so
    the answer is whether a request could be served now: a pool whose connections were
    lost, or that cannot get one in time, is not ready even if a fresh connection would be.
    (A probe with a pool of its own said ready while every request still failed.)"""

    def __init__(self, database: Database, timeout_seconds: float = 2.0) -> None:
        self._database = database
        self._timeout = timeout_seconds

    async def is_reachable(self) -> bool:
        transaction = self._database.transaction()
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    await transaction.read(_SELECT_ONE)
                finally:
                    await transaction.close()
        except (Unavailable, SQLAlchemyError, OSError, TimeoutError):
            return False
        return True
