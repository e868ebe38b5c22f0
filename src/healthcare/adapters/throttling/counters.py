"""Expiring counters. Redis makes them shared (and atomic) across workers and machines."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from healthcare.domain.errors import Unavailable


class Counters(Protocol):
    async def increment(self, key: str, window_seconds: int) -> tuple[int, int]:
        """Add one; return (count, seconds until the window resets)."""
        ...

    async def peek(self, key: str) -> tuple[int, int]: ...

    async def reset(self, key: str) -> None: ...


class MemoryCounters:
    """For one process. Fixed windows: a key's window starts with its first increment."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._counts: dict[str, tuple[int, float]] = {}
        self._max_keys = max_keys

    async def increment(self, key: str, window_seconds: int) -> tuple[int, int]:
        now = time.monotonic()
        count, resets_at = self._counts.get(key, (0, 0.0))
        if resets_at <= now:
            count, resets_at = 0, now + window_seconds
            if len(self._counts) >= self._max_keys:
                self._forget_expired(now)
        self._counts[key] = (count + 1, resets_at)
        # (now + w) - now can come out a hair above w in floating point: never report more.
        return count + 1, min(window_seconds, math.ceil(resets_at - now))

    async def peek(self, key: str) -> tuple[int, int]:
        now = time.monotonic()
        count, resets_at = self._counts.get(key, (0, 0.0))
        return (count, math.ceil(resets_at - now)) if resets_at > now else (0, 0)

    async def reset(self, key: str) -> None:
        self._counts.pop(key, None)

    def _forget_expired(self, now: float) -> None:
        # Bounded memory under a flood of distinct usernames or addresses.
        for key in [k for k, (_, resets_at) in self._counts.items() if resets_at <= now]:
            del self._counts[key]
        if len(self._counts) >= self._max_keys:
            self._counts.clear()


@contextmanager
def _reachable() -> Iterator[None]:
    """Redis down or hung is Unavailable (a 503 with Retry-After), not a 500.

    Deliberately not a fall back to counters per process: that would quietly multiply every
    limit by the number of workers and instances, which is what a guesser wants, while the
    routes that need no throttle (everything with an access token) go on working anyway.
    """
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as error:
        raise Unavailable(
            f"Redis cannot be reached: {type(error).__name__}", store="throttling store"
        ) from error


class RedisCounters:
    """INCR and EXPIRE in one transaction: exact counts however many workers share them.

    Each call is bounded by the client's timeouts (see the container); a Redis that cannot
    be reached in time is Unavailable."""

    def __init__(self, redis: Redis, prefix: str = "healthcare:throttle:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def increment(self, key: str, window_seconds: int) -> tuple[int, int]:
        name = self._prefix + key
        with _reachable():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, window_seconds, nx=True)
                pipe.ttl(name)
                count, _, ttl = await pipe.execute()
        return int(count), max(int(ttl), 0)

    async def peek(self, key: str) -> tuple[int, int]:
        name = self._prefix + key
        with _reachable():
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.get(name)
                pipe.ttl(name)
                raw, ttl = await pipe.execute()
        return (int(raw), max(int(ttl), 0)) if raw is not None else (0, 0)

    async def reset(self, key: str) -> None:
        with _reachable():
            await self._redis.delete(self._prefix + key)
