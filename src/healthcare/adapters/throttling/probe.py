"""Readiness of the throttles' shared store."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from redis.exceptions import RedisError


class RedisProbe:
    def __init__(self, redis: Redis, timeout_seconds: float = 2.0) -> None:
        self._redis = redis
        self._timeout = timeout_seconds

    async def is_reachable(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                await self._redis.ping()
        except (RedisError, OSError, TimeoutError):
            return False
        return True
