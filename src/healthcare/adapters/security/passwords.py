"""bcrypt password hashing, on threads of their own at the lowest CPU priority.

bcrypt releases the GIL, so hashes run beside the event loop. They run on a pool of their
own (by default one thread per core; the server gives each worker its share of the cores,
see the container), whose threads have the lowest scheduling priority (nice 19; on
Linux a thread's nice value is its own): a hash takes whatever CPU is left, and a storm of
logins leaves every other request's latency almost as it was, instead of competing for the
cores on equal terms. With nothing else to do, the hashes still get all of the CPU.
"""

from __future__ import annotations

import asyncio
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


class BcryptPasswordHasher:
    def __init__(self, rounds: int = 12, threads: int | None = None) -> None:
        self._rounds = rounds
        self._threads = threads or os.cpu_count() or 1
        self._executor: ThreadPoolExecutor | None = None
        self._queued = 0  # hashes submitted and not finished (waiting or running)
        # Checked against when the username is unknown, so that path costs the same.
        self._decoy_hash = bcrypt.hashpw(b"decoy password", bcrypt.gensalt(rounds))

    async def _run(self, work: Callable[..., T], *args: bytes) -> T:
        if self._executor is None:  # created in the process that uses it (after a fork)
            self._executor = ThreadPoolExecutor(
                self._threads, "bcrypt", initializer=_lower_this_threads_priority
            )
        self._queued += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
        finally:
            self._queued -= 1

    @property
    def queued(self) -> int:
        """Hashes waiting for a thread or running on one (for /metrics)."""
        return self._queued

    async def hash(self, password: str) -> str:
        secret = _encode(password)
        hashed = await self._run(bcrypt.hashpw, secret, bcrypt.gensalt(self._rounds))
        return hashed.decode("ascii")

    async def verify(self, password: str, password_hash: str) -> bool:
        secret = _encode(password)
        try:
            return await self._run(bcrypt.checkpw, secret, password_hash.encode("ascii"))
        except ValueError:  # a malformed stored hash is a failed check, not a crash
            return False

    async def waste_time(self, password: str) -> None:
        await self._run(bcrypt.checkpw, _encode(password), self._decoy_hash)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _encode(password: str) -> bytes:
    secret = password.encode("utf-8")
    # bcrypt 5 raises on longer input; callers refuse it earlier, this keeps the promise.
    return secret[:PASSWORD_MAX_BYTES]
