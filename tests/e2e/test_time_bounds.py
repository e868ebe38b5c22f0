"""Time bounds and dependencies, seen from the HTTP API: a request blocked in the database
ends at its bound as a 503 with Retry-After."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import make_url

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.settings import Settings
from tests.conftest import libpq_url
from tests.e2e.conftest import (
    PASSWORD,
    PATIENT,
    SECRET,
    assert_problem,
    create_patient,
    serving,
    sign_up,
)
from tests.integration.test_redis_throttling import REDIS_URL


@pytest.mark.postgres
async def test_a_request_blocked_by_a_lock_is_a_503_at_the_lock_timeout(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bounded = Settings(
        database_url=postgres_url,
        secret_key=SECRET,
        bcrypt_rounds=4,
        db_lock_timeout_ms=200,
        db_pool_size=1,
    )
    async with AsyncTestClient(create_app(build_container(bounded))) as client:
        owner = await sign_up(client)
        patient = await create_patient(client, owner)
        holder = await psycopg.AsyncConnection.connect(libpq_url(postgres_url))
        try:
            # Another session holds the patient's row, as a long transaction would.
            await holder.execute("SELECT 1 FROM patient WHERE id = %s FOR UPDATE", [patient["id"]])
            caplog.clear()
            caplog.set_level(logging.INFO)
            started = time.monotonic()
            blocked = await client.put(
                f"/api/patients/{patient['id']}/", json=PATIENT, headers=owner.headers
            )
            elapsed = time.monotonic() - started
        finally:
            await holder.close()
        body = assert_problem(blocked, 503)
        assert body["type"] == "urn:healthcare:problem:unavailable"
        assert blocked.headers["retry-after"] == "1"
        assert elapsed < 1.5
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert warnings[0].levelno == logging.WARNING
        assert "lock_timeout" in warnings[0].getMessage()
        # The pool's only connection is back and sound: the next request is served.
        again = await client.put(
            f"/api/patients/{patient['id']}/", json=PATIENT, headers=owner.headers
        )
        assert again.status_code == 200, again.text


def _settings(**changes: Any) -> Settings:
    return Settings(
        **{"database_url": "memory://", "secret_key": SECRET, "bcrypt_rounds": 4, **changes}
    )


@contextmanager
def silent_server() -> Iterator[str]:
    """A Redis URL whose server takes connections and never answers, as a hung host would."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


async def test_auth_routes_are_503_and_ready_names_redis_while_redis_is_unreachable() -> None:
    # Nothing listens on port 1: the throttles cannot count.
    async with AsyncTestClient(
        create_app(build_container(_settings(redis_url="redis://127.0.0.1:1/0")))
    ) as client:
        register = await client.post(
            "/api/auth/register/",
            json={"username": "ada", "email": "ada@example.org", "password": PASSWORD},
        )
        login = await client.post("/api/token/", json={"username": "ada", "password": PASSWORD})
        refresh = await client.post("/api/token/refresh/", json={"refresh": "x"})
        for response in (register, login, refresh):
            body = assert_problem(response, 503)
            assert body["type"] == "urn:healthcare:problem:unavailable"
            assert "throttl" in body["detail"]
            assert int(response.headers["retry-after"]) >= 1
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json() == {
            "status": "unavailable",
            "checks": {"database": "ok", "redis": "unavailable"},
        }
        assert (await client.get("/health")).status_code == 200


async def test_a_hung_redis_costs_a_request_no_more_than_its_timeout() -> None:
    with silent_server() as url:
        settings = _settings(redis_url=url, redis_timeout_ms=200)
        async with AsyncTestClient(create_app(build_container(settings))) as client:
            started = time.monotonic()
            login = await client.post("/api/token/", json={"username": "ada", "password": PASSWORD})
            elapsed = time.monotonic() - started
            assert_problem(login, 503)
            # One try and one retry on a fresh connection, each bounded by the timeout.
            assert elapsed < 1.0
            started = time.monotonic()
            assert (await client.get("/ready")).status_code == 503
            assert time.monotonic() - started < 1.0


async def test_ready_names_every_dependency_it_checked() -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        await redis.ping()
    except Exception:
        pytest.skip(f"Redis unreachable at {REDIS_URL}")
    finally:
        await redis.aclose()
    async with AsyncTestClient(create_app(build_container(_settings(redis_url=REDIS_URL)))) as on:
        ready = await on.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}
    async with AsyncTestClient(create_app(build_container(_settings()))) as off:
        ready = await off.get("/ready")
        assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}


@pytest.mark.postgres
async def test_ready_tells_the_truth_when_the_database_drops_every_session(
    postgres_url: str,
) -> None:
    """As after a database restart: every pooled connection is dead at once. /ready never
    says 200 while a request would still fail, and requests recover within a second."""
    name = f"hc-ready-{uuid.uuid4().hex[:8]}"
    url = str(make_url(postgres_url).update_query_dict({"application_name": name}))
    settings = _settings(database_url=url, db_pool_size=3)
    container = build_container(settings)
    async with serving(container) as client:
        owner = await sign_up(client)
        patient = await create_patient(client, owner)
        path = f"/api/patients/{patient['id']}/"
        pool = await container.database().pool.current()  # type: ignore[union-attr]
        await pool.wait(timeout=15)  # all three connections open
        admin = await psycopg.AsyncConnection.connect(libpq_url(postgres_url), autocommit=True)
        try:
            killed = await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                [name],
            )
            assert len(await killed.fetchall()) >= 3
            for _ in range(500):  # until they are gone
                alive = await admin.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = %s", [name]
                )
                if await alive.fetchone() is None:
                    break
                await asyncio.sleep(0.01)
        finally:
            await admin.close()
        started = time.monotonic()
        seen: list[tuple[float, int, int]] = []
        while time.monotonic() - started < 1.5:
            ready = (await client.get("/ready")).status_code
            read = (await client.get(path, headers=owner.headers)).status_code
            seen.append((time.monotonic() - started, ready, read))
    assert not [s for s in seen if s[1] == 200 and s[2] != 200], seen
    # One of the three dead connections is found out (by a probe or a request); the pool
    # then checks the others, instead of each failing a request of its own.
    assert len([s for s in seen if s[1] != 200]) + len([s for s in seen if s[2] != 200]) <= 1
    recovered = next(s[0] for s in seen if s[1] == 200 and s[2] == 200)
    assert recovered < 1.0
    assert all(s[1] == s[2] == 200 for s in seen if s[0] > recovered)
