"""Revocation that does not wait for the access token to expire: deactivating an account
or changing its password refuses its access tokens at once on the worker that did it, and
within a second on every other (here: a second app on the same database, as a second
worker is), without a database round trip per request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.settings import Settings
from tests.e2e.conftest import PATIENT, Account, assert_problem, sign_up

Client = AsyncTestClient[Litestar]
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
async def other_worker(settings: Settings) -> AsyncIterator[Client]:
    """Another process's app: its own container, token cache and revocation list."""
    async with AsyncTestClient(create_app(build_container(settings))) as client:
        yield client


async def _refused_within(client: Client, account: Account, seconds: float) -> float:
    """How long until ``account``'s access token is refused there (fails past ``seconds``)."""
    started = time.monotonic()
    while True:
        response = await client.get("/api/patients/", headers=account.headers)
        if response.status_code == 401:
            return time.monotonic() - started
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < seconds, "the token is still accepted"
        await asyncio.sleep(0.02)


async def test_a_deactivated_users_token_stops_at_once_and_on_every_worker(
    client: Client, other_worker: Client, admin: Account
) -> None:
    user = await sign_up(client)
    # Both workers have checked (and cached) the token before.
    for worker in (client, other_worker):
        assert (await worker.get("/api/patients/", headers=user.headers)).status_code == 200

    off = await client.post(f"/api/users/{user.id}/deactivate/", headers=admin.headers)
    assert off.status_code == 200

    created = await client.post("/api/patients/", json=PATIENT, headers=user.headers)
    assert_problem(created, 401)
    await _refused_within(other_worker, user, 1.0)


async def test_a_password_change_ends_the_old_tokens_not_the_new_ones(
    client: Client, other_worker: Client
) -> None:
    user = await sign_up(client)
    assert (await other_worker.get("/api/patients/", headers=user.headers)).status_code == 200

    changed = await client.post(
        "/api/auth/password/",
        headers=user.headers,
        json={"current_password": user.password, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204
    assert_problem(await client.get("/api/patients/", headers=user.headers), 401)
    await _refused_within(other_worker, user, 1.0)

    # Signing in again at once (the same second) gives a token both accept.
    again = await client.post(
        "/api/token/", json={"username": user.username, "password": NEW_PASSWORD}
    )
    fresh = {"Authorization": f"Bearer {again.json()['access']}"}
    for worker in (client, other_worker):
        assert (await worker.get("/api/patients/", headers=fresh)).status_code == 200
