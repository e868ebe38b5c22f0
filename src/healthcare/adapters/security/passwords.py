"""bcrypt password hashing, on threads of their own at the lowest CPU priority.

bcrypt releases the GIL, so hashes run beside the event loop. They run on a pool of their
own (by default one thread per core; the server gives each worker its share of the cores,
see the container), whose threads have the lowest scheduling priority (nice 19; on
Linux a thread's nice value is its own): a hash takes whatever CPU is left, and a storm of
logins leaves every other request's latency almost as it was, instead of competing for the
cores on equal terms. With nothing else to do, the hashes still get all of the CPU.

The threads are shared fairly between whoever the hashes are for (``on_behalf_of``: an
account, or a client): waiting hashes start in turn, one of each party's at a time
(``FairShare``), so one account's storm of password checks delays another's sign-in by the
hashes already running (at most one per thread), instead of queueing it behind the storm.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from healthcare.domain.rules import PASSWORD_MAX_BYTES

T = TypeVar("T")
LOWEST_PRIORITY = 19
log = logging.getLogger(__name__)


def _lower_this_threads_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
    except (AttributeError, OSError) as error:  # not Linux, or not allowed: run as is
        log.warning("bcrypt threads keep normal priority: %s", error)


class FairShare:
    """``slots`` places, handed out in turn between parties. (Per event loop: a worker's.)

    Start-time fair queueing with equal costs: each request is tagged with its party's turn,
    counted while the party has places held or waiting (its first is the turn being served
    now, each next one a turn later), and the waiting request with the lowest tag gets the
    next free place, ties in order of arrival. So a party with many waiting gets one place
    per round, as every other waiting party does, and a party that arrives with nothing
    waiting goes before the next of a party that already holds a place: it waits for the
    places in use, not for one more of the busy party's. A party with nothing held or
    waiting starts afresh (no debt, no credit).
    """

    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._busy = 0
        self._turn = 0  # the tag of the place handed out last
        self._next_turn: dict[str | None, int] = {}  # per party with places held or waiting
        self._outstanding: dict[str | None, int] = {}
        self._queue: list[tuple[int, int, asyncio.Future[None]]] = []  # a heap of tags
        self._arrivals = itertools.count()

    @property
    def waiting(self) -> int:
        return sum(1 for _, _, turn in self._queue if not turn.done())

    async def take(self, party: str | None) -> None:
        """Wait for a place; give it back with ``give_back(party)``."""
        tag = max(self._turn, self._next_turn.get(party, 0))
        self._next_turn[party] = tag + 1
        self._outstanding[party] = self._outstanding.get(party, 0) + 1
        if self._busy < self._slots and not self._queue:
            self._busy += 1
            self._turn = max(self._turn, tag)
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._queue, (tag, next(self._arrivals), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.give_back(party)  # handed a place just as the waiter gave up
            else:
                self._forget_one(party)  # its entry is skipped when it comes up
            raise

    def give_back(self, party: str | None) -> None:
        """Hand the place to the waiting request with the lowest tag, or free it."""
        self._forget_one(party)
        while self._queue:
            tag, _, turn = heapq.heappop(self._queue)
            if not turn.done():
                self._turn = tag
                turn.set_result(None)
                return
        self._busy -= 1

    def _forget_one(self, party: str | None) -> None:
        left = self._outstanding[party] - 1
        if left:
            self._outstanding[party] = left
        else:  # nothing held or waiting: its next request starts afresh
            del self._outstanding[party]
            del self._next_turn[party]


class BcryptPasswordHasher:
    def __init__(self, rounds: int = 12, threads: int | None = None) -> None:
        self._rounds = rounds
        self._threads = threads or os.cpu_count() or 1
        self._executor: ThreadPoolExecutor | None = None
        self._share = FairShare(self._threads)
        self._queued = 0  # hashes submitted and not finished (waiting or running)
        # Checked against when the username is unknown, so that path costs the same.
        self._decoy_hash = bcrypt.hashpw(b"decoy password", bcrypt.gensalt(rounds))

    async def _run(self, party: str | None, work: Callable[..., T], *args: bytes) -> T:
        if self._executor is None:  # created in the process that uses it (after a fork)
            self._executor = ThreadPoolExecutor(
                self._threads, "bcrypt", initializer=_lower_this_threads_priority
            )
        await self._share.take(party)
        self._queued += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
        finally:
            self._queued -= 1
            self._share.give_back(party)

    @property
    def queued(self) -> int:
        """Hashes waiting for a thread or running on one (for /metrics)."""
        return self._queued + self._share.waiting

    async def hash(self, password: str, *, on_behalf_of: str | None = None) -> str:
        secret = _encode(password)
        salt = bcrypt.gensalt(self._rounds)
        hashed = await self._run(on_behalf_of, bcrypt.hashpw, secret, salt)
        return hashed.decode("ascii")

    async def verify(
        self, password: str, password_hash: str, *, on_behalf_of: str | None = None
    ) -> bool:
        secret = _encode(password)
        try:
            return await self._run(
                on_behalf_of, bcrypt.checkpw, secret, password_hash.encode("ascii")
            )
        except ValueError:  # a malformed stored hash is a failed check, not a crash
            return False

    async def waste_time(self, password: str, *, on_behalf_of: str | None = None) -> None:
        await self._run(on_behalf_of, bcrypt.checkpw, _encode(password), self._decoy_hash)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _encode(password: str) -> bytes:
    secret = password.encode("utf-8")
    # bcrypt 5 raises on longer input; callers refuse it earlier, this keeps the promise.
    return secret[:PASSWORD_MAX_BYTES]
