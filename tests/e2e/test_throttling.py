"""Throttling seen by a client: 429 with Retry-After, as problem details."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable
from typing import TypeVar

from litestar.testing import AsyncTestClient

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.settings import Settings
from tests.e2e.conftest import PASSWORD, AdminBrowser, assert_problem, sign_up, unique

T = TypeVar("T")


async def test_failed_logins_get_429_with_retry_after(settings: Settings) -> None:
    app = create_app(build_container(dataclasses.replace(settings, login_attempts_per_username=3)))
    async with AsyncTestClient(app) as client:
        account = await sign_up(client)  # one successful login: resets the count
        for _ in range(3):
            wrong = await client.post(
                "/api/auth/login/",
                json={"username": account.username, "password": "not the password"},
            )
            assert wrong.status_code == 401
        blocked = await client.post(
            "/api/token/", json={"username": account.username.upper(), "password": PASSWORD}
        )
        body = assert_problem(blocked, 429)
        assert 0 < int(blocked.headers["retry-after"]) <= 300
        assert PASSWORD not in str(body)
        other = await sign_up(client)  # other accounts are untouched
        assert other.access


async def test_many_failures_from_one_address_block_it(settings: Settings) -> None:
    app = create_app(build_container(dataclasses.replace(settings, login_failures_per_client=4)))
    async with AsyncTestClient(app) as client:
        for _ in range(4):
            response = await client.post(
                "/api/auth/login/", json={"username": unique(), "password": "whatever123"}
            )
            assert response.status_code == 401
        assert_problem(
            await client.post(
                "/api/auth/login/", json={"username": unique(), "password": "whatever123"}
            ),
            429,
        )


async def test_registration_and_refresh_are_limited_per_address(settings: Settings) -> None:
    app = create_app(build_container(dataclasses.replace(settings, auth_requests_per_minute=3)))
    async with AsyncTestClient(app) as client:
        account = await sign_up(client)  # 1 registration
        refreshed = await client.post("/api/token/refresh/", json={"refresh": account.refresh})
        assert refreshed.status_code == 200  # 2
        assert refreshed.headers["ratelimit-policy"] == "3; w=60"
        assert refreshed.headers["ratelimit-limit"] == "3"
        assert refreshed.headers["ratelimit-remaining"] == "1"
        assert 0 < int(refreshed.headers["ratelimit-reset"]) <= 60
        username = unique()
        assert (
            await client.post(
                "/api/register/",
                json={
                    "username": username,
                    "email": f"{username}@x.org",
                    "password": PASSWORD,
                },
            )
        ).status_code == 201  # 3
        blocked = await client.post(
            "/api/auth/register/",
            json={"username": unique(), "email": f"{unique()}@x.org", "password": PASSWORD},
        )
        assert_problem(blocked, 429)
        assert int(blocked.headers["retry-after"]) > 0
        # Ordinary reads are not limited.
        for _ in range(10):
            listed = await client.get("/api/patients/", headers=account.headers)
            assert listed.status_code == 200


async def test_wrong_current_passwords_are_throttled_like_sign_in(settings: Settings) -> None:
    """A password change is a guessing oracle as good as sign-in: the same brakes, per
    account (shared with sign-in) and per client."""
    limited = dataclasses.replace(settings, login_attempts_per_username=3)
    async with AsyncTestClient(create_app(build_container(limited))) as client:
        account = await sign_up(client)  # a successful sign-in: the count starts at zero

        def change(current: str) -> dict[str, str]:
            return {"current_password": current, "new_password": "a brand new passphrase"}

        for _ in range(3):
            wrong = await client.post(
                "/api/auth/password/", headers=account.headers, json=change("a wrong guess")
            )
            assert_problem(wrong, 400, "current_password")
        blocked = await client.post(
            "/api/auth/password/", headers=account.headers, json=change(PASSWORD)
        )
        assert_problem(blocked, 429)
        assert 0 < int(blocked.headers["retry-after"]) <= 300
        # Sign-in shares the account's count.
        signin = await client.post(
            "/api/token/", json={"username": account.username, "password": PASSWORD}
        )
        assert_problem(signin, 429)


async def timed(answer: Awaitable[T]) -> tuple[T, float]:
    started = time.monotonic()
    result = await answer
    return result, time.monotonic() - started


async def test_refused_password_checks_are_answered_after_the_refusal_delay(
    settings: Settings,
) -> None:
    """LOGIN_REFUSAL_DELAY_MS holds back every refusal of the sign-in throttle: the API's
    sign-in, the password change and the admin's sign-in form. (Lower bounds only: how much
    longer an answer takes depends on the machine.)"""
    delay = 0.2
    limited = dataclasses.replace(
        settings, login_attempts_per_username=1, login_refusal_delay_ms=int(delay * 1000)
    )
    async with AsyncTestClient(create_app(build_container(limited))) as client:
        account = await sign_up(client)  # a successful sign-in: the count starts at zero
        wrong = await client.post(
            "/api/auth/login/", json={"username": account.username, "password": "not it"}
        )
        assert wrong.status_code == 401  # the one attempt, admitted: the account is locked

        signin, took = await timed(
            client.post("/api/token/", json={"username": account.username, "password": PASSWORD})
        )
        assert_problem(signin, 429)
        assert took >= delay
        assert 0 < int(signin.headers["retry-after"]) <= 300

        change, took = await timed(
            client.post(
                "/api/auth/password/",
                headers=account.headers,
                json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
            )
        )
        assert_problem(change, 429)
        assert took >= delay

        admin = AdminBrowser(client)
        page, took = await timed(admin.sign_in(account.username))
        assert page.status_code == 401
        assert "Too many attempts" in page.text
        assert took >= delay
