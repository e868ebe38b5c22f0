"""psycopg's own connection pool, for the units of work on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.engine import make_url

from healthcare.adapters.persistence.sqlalchemy.engine import normalise_url
from healthcare.domain.errors import Unavailable

# How long a checkout waits while the database is known to be away: long enough for a
# connection that comes back, short enough that requests fail fast.
WAIT_WHILE_AWAY_SECONDS = 0.25


async def _configure(connection: psycopg.AsyncConnection[Any]) -> None:
    # The units of work read outside transactions until their first write, which is only
    # sound under READ COMMITTED (see transaction.py): never inherit another default.
    #
    # Generic plans always: every statement here is a key lookup or an index-ordered page,
    # whose generic plan is the one a custom plan would pick. Left to choose, PostgreSQL
    # keeps planning a page anew on every execution once an owner has thousands of rows:
    # a generic `LIMIT $n` is costed as a tenth of the owner's rows, so it never looks
    # cheaper than the custom plans. Measured on 1,000,000 patient rows (100 owners), that
    # replanning cost a list request half again its database CPU.
    await connection.execute(
        b"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED;"
        b" SET plan_cache_mode = force_generic_plan"
    )


class PoolStats(NamedTuple):
    size: int  # connections open
    in_use: int  # checked out by units of work
    waiting: int  # checkouts waiting for a connection


# SQLSTATEs (and classes of them) that /metrics tells apart; see ``error_kind``.
_ERROR_KINDS = {
    "57014": "statement_timeout",  # query_canceled: statement_timeout (or a cancel)
    "55P03": "lock_timeout",  # lock_not_available
    "40P01": "deadlock",
    "40001": "serialization",
    "53300": "too_many_connections",
}
_ERROR_CLASSES = {"23": "integrity", "08": "connection"}


def error_kind(error: psycopg.Error) -> str:
    """A short name for a driver error's kind, for counting (never its message)."""
    state = error.sqlstate or ""
    return _ERROR_KINDS.get(state) or _ERROR_CLASSES.get(state[:2], "other")


class DriverPool:
    """A fixed number of autocommit connections per event loop, opened at the first checkout.

    Opened lazily, so that whoever builds it (the container, when the server imports the
    app's factory) needs no running loop. psycopg's pool and its connections belong to the
    loop that opened them; a server worker has one loop, but tests and the command line may
    run several in turn, so each loop gets its own pool. A pool closed by ``close`` (the
    app's shutdown) is opened anew if the loop goes on using it.

    A checkout waits at most ``timeout_seconds`` for a connection, then raises Unavailable.
    Once the database is known to be away (a checkout timed out, or a connection was lost),
    checkouts wait only ``WAIT_WHILE_AWAY_SECONDS`` until one succeeds again: during an
    outage requests fail at once instead of each waiting out the full timeout.
    """

    def __init__(self, url: str, *, size: int, timeout_seconds: float = 5.0) -> None:
        # SQLAlchemy's URL (postgresql+psycopg://...) as libpq's: its query parameters
        # (sslmode, ...) pass through.
        self._conninfo = (
            make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(False)
        )
        self._size = size
        self._timeout = timeout_seconds
        self._away = False
        # Errors by kind (error_kind, plus pool_timeout and connection_lost), since start:
        # read by /metrics, which publishes what grew.
        self.errors: Counter[str] = Counter()
        self._pools: WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnectionPool] = (
            WeakKeyDictionary()
        )
        self._opening: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            WeakKeyDictionary()
        )

    async def current(self) -> AsyncConnectionPool:
        """This loop's pool, opened if need be; connections go back to the one they left."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None and not pool.closed:
            return pool
        async with self._opening.setdefault(loop, asyncio.Lock()):
            pool = self._pools.get(loop)
            if pool is None or pool.closed:
                pool = AsyncConnectionPool(
                    self._conninfo,
                    min_size=self._size,
                    max_size=self._size,
                    timeout=self._timeout,
                    kwargs={"autocommit": True},
                    configure=_configure,
                    open=False,
                )
                await pool.open(wait=False)
                self._pools[loop] = pool
        return pool

    async def checkout(self) -> tuple[AsyncConnectionPool, psycopg.AsyncConnection[Any]]:
        """A connection, and the pool it goes back to (``putconn``)."""
        pool = await self.current()
        wait = min(self._timeout, WAIT_WHILE_AWAY_SECONDS) if self._away else self._timeout
        try:
            connection = await pool.getconn(wait)
        except PoolTimeout as error:
            self._away = True
            self.errors["pool_timeout"] += 1
            raise Unavailable(f"No database connection within {wait:g} s") from error
        self._away = False
        return pool, connection

    def lost(self) -> None:
        """A connection broke: the database may be away."""
        self._away = True
        self.errors["connection_lost"] += 1

    def failed(self, error: psycopg.Error) -> None:
        """A statement failed (the connection still works): counted by kind."""
        self.errors[error_kind(error)] += 1

    def stats(self) -> PoolStats:
        """This process's connections, over every event loop's pool."""
        size = in_use = waiting = 0
        for pool in list(self._pools.values()):
            if pool.closed:
                continue
            numbers = pool.get_stats()
            size += numbers.get("pool_size", 0)
            in_use += numbers.get("pool_size", 0) - numbers.get("pool_available", 0)
            waiting += numbers.get("requests_waiting", 0)
        return PoolStats(size, in_use, waiting)

    async def close(self) -> None:
        """Close this loop's pool (those of loops that have ended went with them)."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()
