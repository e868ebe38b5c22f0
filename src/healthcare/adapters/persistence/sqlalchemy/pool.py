"""psycopg's own connection pool, for the units of work on PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, NamedTuple
from weakref import WeakKeyDictionary

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from psycopg_pool.base import AttemptWithBackoff
from sqlalchemy.engine import make_url

from healthcare.adapters.persistence.sqlalchemy.engine import normalise_url
from healthcare.domain.errors import Unavailable

log = logging.getLogger(__name__)

# How long a checkout waits while the database is known to be away: long enough for a
# connection that comes back, short enough that requests fail fast.
WAIT_WHILE_AWAY_SECONDS = 0.25
# Longest between two attempts to replace a lost connection.
MAX_RECONNECT_DELAY_SECONDS = 0.5


class _Reconnection(AttemptWithBackoff):
    """psycopg_pool's attempts to replace a lost connection, waiting 0.1 s, then half again
    as long each time, but never more than ``MAX_RECONNECT_DELAY_SECONDS``.

    Its own schedule (1 s, doubling) kept a pool without connections for seconds after its
    database came back: 3.3 s after a restart in a review, while /ready already said 200.
    Connection attempts to a database that is down cost next to nothing, each pooled
    connection makes at most two a second, and they stop once it is back.
    """

    INITIAL_DELAY = 0.1
    DELAY_BACKOFF = 1.5

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, MAX_RECONNECT_DELAY_SECONDS)


class _Pool(AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
    """psycopg's pool, reconnecting on our schedule (``_Reconnection``).

    (``_add_connection`` is psycopg_pool's own, private: it makes the first attempt of each
    replacement; tests/integration/test_time_bounds.py fails if that changes.)
    """

    async def _add_connection(
        self, attempt: AttemptWithBackoff | None, growing: bool = False
    ) -> None:
        if attempt is None:
            attempt = _Reconnection(timeout=self.reconnect_timeout)
        await super()._add_connection(attempt, growing)


def _session_settings(statement_timeout_ms: int, lock_timeout_ms: int) -> bytes:
    # The units of work read outside transactions until their first write, which is only
    # sound under READ COMMITTED (see transaction.py): never inherit another default.
    #
    # Generic plans always: every statement here is a key lookup or an index-ordered page,
    # whose generic plan is the one a custom plan would pick. Left to choose, PostgreSQL
    # keeps planning a page anew on every execution once an owner has thousands of rows:
    # a generic `LIMIT $n` is costed as a tenth of the owner's rows, so it never looks
    # cheaper than the custom plans. Measured on 1,000,000 patient rows (100 owners), that
    # replanning cost a list request half again its database CPU.
    #
    # Bounded waits: a statement blocked by another session's lock, or running away, would
    # otherwise hold its request and its pooled connection for as long as that lasts. Both
    # end the statement with an error the transaction turns into Unavailable (a 503).
    return (
        b"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED;"
        b" SET plan_cache_mode = force_generic_plan;"
        b" SET statement_timeout = %d; SET lock_timeout = %d"
        % (statement_timeout_ms, lock_timeout_ms)
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

    A lost connection means the others are likely lost too (the database restarted, or
    dropped our sessions): the pool's idle connections are then checked at once, in the
    background (psycopg's ``check``, which holds them back meanwhile, so checkouts get only
    sound ones), and the dead ones replaced. So one request (or readiness probe) finds
    out, instead of one per pooled connection.
    """

    def __init__(
        self,
        url: str,
        *,
        size: int,
        timeout_seconds: float = 5.0,
        statement_timeout_ms: int = 5000,
        lock_timeout_ms: int = 2000,
    ) -> None:
        # SQLAlchemy's URL (postgresql+psycopg://...) as libpq's: its query parameters
        # (sslmode, ...) pass through.
        self._conninfo = (
            make_url(normalise_url(url)).set(drivername="postgresql").render_as_string(False)
        )
        self._size = size
        self._timeout = timeout_seconds
        self.statement_timeout_ms = statement_timeout_ms
        self.lock_timeout_ms = lock_timeout_ms
        self._session_settings = _session_settings(statement_timeout_ms, lock_timeout_ms)
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
        # The pools being checked after a loss, and the task checking each.
        self._checking: dict[AsyncConnectionPool, asyncio.Task[None]] = {}

    async def current(self) -> AsyncConnectionPool:
        """This loop's pool, opened if need be; connections go back to the one they left."""
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None and not pool.closed:
            return pool
        async with self._opening.setdefault(loop, asyncio.Lock()):
            pool = self._pools.get(loop)
            if pool is None or pool.closed:
                pool = _Pool(
                    self._conninfo,
                    min_size=self._size,
                    max_size=self._size,
                    timeout=self._timeout,
                    kwargs={"autocommit": True},
                    configure=self._configure,
                    open=False,
                )
                await pool.open(wait=False)
                self._pools[loop] = pool
        return pool

    async def _configure(self, connection: psycopg.AsyncConnection[Any]) -> None:
        await connection.execute(self._session_settings)

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
        """A connection broke: the database may be away, and the pool's other connections
        lost with it. Check them all, once at a time."""
        self._away = True
        self.errors["connection_lost"] += 1
        pool = self._pools.get(asyncio.get_running_loop())
        if pool is not None and pool not in self._checking:
            self._checking[pool] = asyncio.get_running_loop().create_task(self._check(pool))

    async def _check(self, pool: AsyncConnectionPool) -> None:
        try:
            await pool.check()
        except Exception:  # closed meanwhile, say
            log.warning("Could not check the database connections", exc_info=True)
        finally:
            self._checking.pop(pool, None)

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
            if (checking := self._checking.pop(pool, None)) is not None:
                checking.cancel()
            await pool.close()
