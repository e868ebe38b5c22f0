"""Throttling counters in Redis, shared by processes: two granian workers, one limit."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from healthcare.adapters.throttling.counters import RedisCounters
from healthcare.adapters.throttling.login import CountingLoginThrottle
from healthcare.domain.errors import TooManyAttempts
from tests.integration.served import CLI, served, server_env

# A database of its own, flushed per test, so runs never see each other's counters.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as error:
        await client.aclose()
        if os.environ.get("REQUIRE_REDIS") == "1":
            pytest.fail(f"Redis is required but unreachable at {REDIS_URL}: {error}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}")
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def test_counters_are_exact_under_concurrency_and_shared(redis: Redis) -> None:
    first, second = RedisCounters(redis), RedisCounters(Redis.from_url(REDIS_URL))
    await asyncio.gather(*(c.increment("k", 60) for c in [first, second] * 25))
    count, resets_in = await first.peek("k")
    assert count == 50
    assert 0 < resets_in <= 60
    await second.reset("k")
    assert await first.peek("k") == (0, 0)


async def test_two_throttles_on_one_redis_share_the_limit(redis: Redis) -> None:
    workers = [
        CountingLoginThrottle(RedisCounters(redis), max_attempts_per_username=4) for _ in range(2)
    ]
    for i in range(4):
        await workers[i % 2].admit("ann", "10.0.0.1")
    await workers[1].failed("10.0.0.1")  # (a client that never failed would get one try)
    with pytest.raises(TooManyAttempts):
        await workers[0].admit("ann", "10.0.0.1")


@pytest.fixture
def two_worker_server(redis: Redis, tmp_path: Path) -> Iterator[str]:
    env = server_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'two-workers.sqlite3'}",
        REDIS_URL=REDIS_URL,
        LOGIN_ATTEMPTS_PER_USERNAME="4",
        LOGIN_REFUSAL_DELAY_MS="0",  # (tests/integration/test_refusal_delay.py has it)
        WORKERS="2",
    )
    subprocess.run(
        [*CLI, "upgrade"], env={**os.environ, **env}, check=True, capture_output=True, timeout=60
    )
    with served(env, tmp_path) as (base, _):
        yield base


def test_two_workers_share_login_limits_through_redis(two_worker_server: str) -> None:
    base = two_worker_server
    body = {"username": "shared", "email": "shared@example.org", "password": "long enough pw"}
    assert httpx.post(f"{base}/api/auth/register/", json=body, timeout=10).status_code == 201
    statuses = []
    for _ in range(5):
        # A fresh connection each time, so either worker may take it.
        with httpx.Client(base_url=base, timeout=10) as client:
            response = client.post(
                "/api/auth/login/", json={"username": "shared", "password": "wrong password"}
            )
            statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 401, 429]
    # The count lives in Redis, not in one worker's memory: were it per process, the test
    # above could still pass whenever every connection happened to reach the same worker.
    shared = SyncRedis.from_url(REDIS_URL)
    try:
        keys = shared.keys("healthcare:throttle:login:user:*")
        assert len(keys) == 1
        assert int(shared.get(keys[0]) or 0) == 5
    finally:
        shared.close()
