"""The HTTP app end to end, once per database (see ``database_url`` in tests/conftest.py)."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcare.entrypoints.container import Container, build_container
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.settings import Settings

SECRET = "e2e-secret-key-that-is-long-enough-for-hs256"
PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    # bcrypt at its lowest cost keeps the suite fast; production defaults to 12.
    # Throttles wide open: every test client shares one address. test_throttling narrows them,
    # and its refusals are answered at once but where it times the refusal delay.
    return Settings(
        database_url=database_url,
        secret_key=SECRET,
        bcrypt_rounds=4,
        login_attempts_per_username=10_000,
        login_failures_per_client=10_000,
        login_refusal_delay_ms=0,
        auth_requests_per_minute=100_000,
    )


@pytest.fixture(scope="session")
def container(settings: Settings) -> Container:
    return build_container(settings)


@pytest.fixture(scope="session")
def app(container: Container) -> Litestar:
    return create_app(container)


@asynccontextmanager
async def serving(
    container: Container, app: Litestar | None = None
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A test client of ``app`` (by default a new app of ``container``), for a test that also
    calls ``container`` directly.

    The test client runs the app, its requests and its background tasks on an event loop of
    its own in another thread, while the test's direct calls run on pytest's loop. SQLAlchemy
    guards an engine's first connection with an asyncio lock, which belongs to one loop: when
    both loops made that first connection at once, the waiter's wake-up went to the wrong
    loop and the test hung. Connecting once from this loop first takes that lock out of play.
    """
    await container.database_probe().is_reachable()
    try:
        async with AsyncTestClient(app or create_app(container)) as test_client:
            yield test_client
    finally:
        await _close_this_loops_pool(container)


async def _close_this_loops_pool(container: Container) -> None:
    """The probe above, and a test's direct calls, use a PostgreSQL pool of this loop's own
    (pool.py: one per loop), which the app's shutdown, on the client's loop, leaves open.
    Left open, its workers outlive the session's loop: run alone, a file hung at exit."""
    if container.settings().persistence == "sqlalchemy":
        pool = container.database().pool
        if pool is not None:
            await pool.close()


@pytest.fixture(scope="session")
async def client(app: Litestar, container: Container) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with serving(container, app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
async def rotating_client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The app with REFRESH_TOKEN_ROTATION on, on the same database as ``client``."""
    rotating = dataclasses.replace(settings, refresh_token_rotation=True)
    async with AsyncTestClient(create_app(build_container(rotating))) as test_client:
        yield test_client


@dataclass
class Account:
    id: int
    username: str
    email: str
    password: str
    access: str
    refresh: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


def unique(prefix: str = "user") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def sign_up(client: AsyncTestClient[Litestar], username: str | None = None) -> Account:
    username = username or unique()
    email = f"{username}@example.org"
    registered = await client.post(
        "/api/auth/register/", json={"username": username, "email": email, "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    tokens = await client.post(
        "/api/auth/login/", json={"username": username, "password": PASSWORD}
    )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    return Account(
        registered.json()["id"], username, email, PASSWORD, body["access"], body["refresh"]
    )


@pytest.fixture
async def alice(client: AsyncTestClient[Litestar]) -> Account:
    return await sign_up(client)


@pytest.fixture
async def bob(client: AsyncTestClient[Litestar]) -> Account:
    return await sign_up(client)


@pytest.fixture
async def admin(client: AsyncTestClient[Litestar], container: Container) -> Account:
    username = unique("admin")
    await container.register_user()(
        username, f"{username}@example.org", PASSWORD, is_staff=True, is_superuser=True
    )
    tokens = await client.post("/api/token/", json={"username": username, "password": PASSWORD})
    body = tokens.json()
    user = await client.get("/api/auth/me/", headers={"Authorization": f"Bearer {body['access']}"})
    return Account(
        user.json()["id"],
        username,
        f"{username}@example.org",
        PASSWORD,
        body["access"],
        body["refresh"],
    )


PATIENT: dict[str, Any] = {"name": "Ada Lovelace", "age": 36, "gender": "female"}
DOCTOR: dict[str, Any] = {"name": "Dr. Gregory House", "specialization": "Diagnostics"}


async def create_patient(
    client: AsyncTestClient[Litestar], owner: Account, **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        "/api/patients/", json={**PATIENT, **fields}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_doctor(
    client: AsyncTestClient[Litestar], owner: Account, **fields: Any
) -> dict[str, Any]:
    response = await client.post("/api/doctors/", json={**DOCTOR, **fields}, headers=owner.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def assert_problem(response: Any, status: int, *fields: str) -> dict[str, Any]:
    """An RFC 9457 body with the given status, naming at least the given fields."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    named = {error["field"] for error in body.get("errors", [])}
    assert set(fields) <= named, f"expected errors on {fields}, got {body}"
    return body


class AdminBrowser:
    """A browser on the admin: the client's cookie jar, and the last page's CSRF token."""

    def __init__(self, client: AsyncTestClient[Litestar]) -> None:
        self.client = client
        self.token = ""

    def _remember(self, response: httpx.Response) -> httpx.Response:
        if found := _CSRF.search(response.text):
            self.token = found.group(1)
        return response

    async def get(self, path: str, **params: Any) -> httpx.Response:
        response = await self.client.get(path, params=params, follow_redirects=False)
        return self._remember(response)

    async def post(self, path: str, form: dict[str, Any], *, csrf: bool = True) -> httpx.Response:
        data = {**form, "csrf_token": self.token} if csrf else form
        response = await self.client.post(path, data=data, follow_redirects=False)
        return self._remember(response)

    async def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        """Sign in; once in, the home page is opened, for the new session's CSRF token."""
        await self.get("/admin/login")
        response = await self.post("/admin/login", {"username": username, "password": password})
        if response.status_code == 303:
            await self.get("/admin/")
        return response
