"""The audit trail over HTTP: what is recorded, who may read it, and client addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.testing import AsyncTestClient
from litestar.types import ASGIApp, Receive, Scope, Send

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.settings import MEMORY_URL, Settings
from tests.e2e.conftest import (
    PASSWORD,
    SECRET,
    Account,
    assert_problem,
    create_doctor,
    create_patient,
)
from tests.e2e.test_fhir import FHIR, fhir_patient

Client = AsyncTestClient[Litestar]


async def trail(
    client: Client | PeerClient, admin: Account, **filters: Any
) -> list[dict[str, Any]]:
    response = await client.get("/api/audit/", params=filters, headers=admin.headers)
    assert response.status_code == 200, response.text
    assert int(response.headers["x-total-count"]) >= len(response.json())
    return list(response.json())


def actions(events: list[dict[str, Any]]) -> list[tuple[str, str, int | None]]:
    """Oldest first, as (action, outcome, resource id)."""
    return [(e["action"], e["outcome"], e["resource_id"]) for e in reversed(events)]


async def test_a_patients_whole_life_is_recorded(
    client: Client, alice: Account, admin: Account
) -> None:
    def traced(n: int) -> dict[str, str]:
        return {**alice.headers, "X-Request-ID": f"trace-{n}"}

    patient = await create_patient(client, alice, notes="Allergic to penicillin")
    pid = patient["id"]
    doctor = await create_doctor(client, alice)
    assert (await client.get(f"/api/patients/{pid}/", headers=traced(1))).status_code == 200
    assert (await client.get("/api/patients/", headers=traced(2))).status_code == 200
    changed = {"name": "Ada King", "age": 37, "gender": "Female"}
    updated = await client.put(f"/api/patients/{pid}/", json=changed, headers=traced(3))
    assert updated.status_code == 200
    assigned = await client.post(
        "/api/mappings/", json={"patient": pid, "doctor": doctor["id"]}, headers=traced(4)
    )
    mid = assigned.json()["id"]
    assert (await client.get("/api/mappings/", headers=traced(5))).status_code == 200
    assert (await client.get(f"/api/mappings/{pid}/", headers=traced(6))).status_code == 200
    assert (await client.get(f"/api/patients/{pid}/doctors/", headers=traced(7))).status_code == 200
    assert (await client.delete(f"/api/mappings/{mid}/", headers=traced(8))).status_code == 204
    assert (await client.delete(f"/api/patients/{pid}/", headers=traced(9))).status_code == 204
    assert (await client.get(f"/api/patients/{pid}/", headers=traced(10))).status_code == 404

    events = await trail(client, admin, user_id=alice.id)

    assert actions(events) == [
        ("auth.register", "success", alice.id),
        ("auth.login", "success", alice.id),
        ("patient.create", "success", pid),
        ("patient.read", "success", pid),
        ("patient.list", "success", None),
        ("patient.update", "success", pid),
        ("mapping.create", "success", mid),
        ("mapping.list", "success", None),
        ("mapping.list_patient", "success", pid),
        ("patient.doctors", "success", pid),
        ("mapping.delete", "success", mid),
        ("patient.delete", "success", pid),
        ("patient.read", "not_found", pid),
    ]
    assert [e["request_id"] for e in reversed(events)][3:] == [f"trace-{n}" for n in range(1, 11)]
    assert {e["user_id"] for e in events} == {alice.id}
    assert {e["client"] for e in events} == {"testclient"}  # the test client's address
    as_text = str(events)
    for secret in ("Ada", "penicillin", alice.access, alice.refresh, PASSWORD):
        assert secret not in as_text


async def test_sign_in_events_name_the_account_not_the_guess(
    client: Client, rotating_client: Client, alice: Account, admin: Account
) -> None:
    refused = await client.post(
        "/api/auth/login/", json={"username": alice.username, "password": "wrong password 1"}
    )
    assert refused.status_code == 401
    # Reuse detection needs rotation (REFRESH_TOKEN_ROTATION); both apps share the database.
    refresh = {"refresh": alice.refresh}
    refreshed = await rotating_client.post("/api/auth/token/refresh/", json=refresh)
    assert refreshed.status_code == 200
    reused = await rotating_client.post("/api/auth/token/refresh/", json=refresh)
    assert reused.status_code == 401
    login = await client.post(
        "/api/auth/login/", json={"username": alice.username, "password": PASSWORD}
    )
    logout = await client.post(
        "/api/auth/logout/", json={"refresh": login.json()["refresh"]}, headers=alice.headers
    )
    assert logout.status_code == 204

    events = await trail(client, admin, resource_type="user", resource_id=alice.id)

    assert [(e["action"], e["outcome"], e["user_id"]) for e in reversed(events)] == [
        ("auth.register", "success", alice.id),
        ("auth.login", "success", alice.id),
        ("auth.login", "failed", None),
        ("auth.refresh", "success", alice.id),
        ("auth.refresh_reuse", "failed", alice.id),
        ("auth.login", "success", alice.id),
        ("auth.logout", "success", alice.id),
    ]
    assert "wrong password" not in str(events)


async def test_only_administrators_read_the_trail(
    client: Client, alice: Account, admin: Account
) -> None:
    assert_problem(await client.get("/api/audit/"), 401)
    assert_problem(await client.get("/api/audit/", headers=alice.headers), 403)

    events = await trail(client, admin, user_id=alice.id, action="audit.read")
    assert actions(events) == [("audit.read", "denied", None)]


async def test_filters_by_time_and_pages(client: Client, alice: Account, admin: Account) -> None:
    for _ in range(3):
        await client.get("/api/patients/", headers=alice.headers)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    earlier = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    assert await trail(client, admin, user_id=alice.id, since=later) == []
    assert await trail(client, admin, user_id=alice.id, until=earlier) == []
    assert len(await trail(client, admin, user_id=alice.id, since=earlier, until=later)) == 5
    naive = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)  # read as UTC
    assert await trail(client, admin, user_id=alice.id, since=naive.isoformat()) == []

    page = await client.get(
        "/api/audit/",
        params={"user_id": alice.id, "action": "patient.list", "limit": 2},
        headers=admin.headers,
    )
    assert page.headers["x-total-count"] == "3"
    assert 'rel="next"' in page.headers["link"]
    assert "action=patient.list" in page.headers["link"]
    assert len(page.json()) == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"resource_type": "spaceship"}, "resource_type"),
        ({"action": "patient.steal"}, "action"),
        ({"outcome": "maybe"}, "outcome"),
        ({"since": "yesterday"}, "since"),
        ({"user_id": "0"}, "user_id"),
        ({"resource_id": str(2**63)}, "resource_id"),
        ({"limit": "0"}, "limit"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ],
)
async def test_bad_filters_are_a_400(
    client: Client, admin: Account, params: dict[str, str], field: str
) -> None:
    response = await client.get("/api/audit/", params=params, headers=admin.headers)
    body = assert_problem(response, 400)
    assert field in str(body)


class PeerAt:
    """Serves an app as if every connection came from ``host``."""

    def __init__(self, app: ASGIApp, host: str) -> None:
        self.app, self.host = app, host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            scope["client"] = (self.host, 40000)
        await self.app(scope, receive, send)


PeerClient = AsyncTestClient[PeerAt]


@pytest.fixture
async def behind_proxy() -> AsyncIterator[tuple[PeerClient, PeerClient, Account]]:
    """Two clients of one app that trusts 10.0.0.0/8: one via a proxy, one direct."""
    settings = Settings(
        database_url=MEMORY_URL,
        secret_key=SECRET,
        bcrypt_rounds=4,
        trusted_proxies=("10.0.0.0/8",),
    )
    container = build_container(settings)
    app = create_app(container)
    await container.register_user()(
        "auditor", "auditor@example.org", PASSWORD, is_staff=True, is_superuser=True
    )
    async with (
        AsyncTestClient(PeerAt(app, "10.1.2.3")) as proxied,
        AsyncTestClient(PeerAt(app, "192.0.2.1")) as direct,
    ):
        tokens = await direct.post(
            "/api/token/", json={"username": "auditor", "password": PASSWORD}
        )
        admin = Account(1, "auditor", "", PASSWORD, tokens.json()["access"], "")
        yield proxied, direct, admin


@pytest.mark.parametrize(
    ("via_proxy", "forwarded_for", "client"),
    [
        (True, "203.0.113.5", "203.0.113.5"),
        # Entries left of the last untrusted one were written by the client: ignored.
        (True, "1.1.1.1, 203.0.113.5, 10.9.9.9", "203.0.113.5"),
        (True, "not-an-address", "10.1.2.3"),
        (True, None, "10.1.2.3"),
        # Anyone else's X-Forwarded-For is ignored.
        (False, "203.0.113.5", "192.0.2.1"),
    ],
)
async def test_client_addresses_come_through_trusted_proxies_only(
    behind_proxy: tuple[PeerClient, PeerClient, Account],
    via_proxy: bool,
    forwarded_for: str | None,
    client: str,
) -> None:
    proxied, direct, admin = behind_proxy
    caller = proxied if via_proxy else direct
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    refused = await caller.post(
        "/api/auth/login/",
        json={"username": "auditor", "password": "wrong-password"},
        headers=headers,
    )
    assert refused.status_code == 401

    events = await trail(direct, admin, action="auth.login", outcome="failed")
    assert events[0]["client"] == client


# The FHIR face (tests/e2e/test_fhir.py) reaches the same use cases, so the same events.


async def test_the_fhir_routes_are_audited_as_the_rest_ones(
    client: Client, alice: Account, admin: Account
) -> None:
    created = await client.post(f"{FHIR}/Patient", json=fhir_patient(), headers=alice.headers)
    assert created.status_code == 201, created.text
    pid = int(created.json()["id"])
    url = f"{FHIR}/Patient/{pid}"
    await client.get(url, headers=alice.headers)
    await client.get(f"{FHIR}/Patient", headers=alice.headers)
    await client.put(url, json=fhir_patient(id=str(pid)), headers=alice.headers)
    await client.get(f"{FHIR}/CareTeam/{pid}", headers=alice.headers)
    await client.delete(url, headers=alice.headers)
    await client.get(url, headers=alice.headers)
    events = await client.get(
        "/api/audit/",
        params={"user_id": alice.id, "resource_type": "patient"},
        headers=admin.headers,
    )
    assert [(e["action"], e["outcome"], e["resource_id"]) for e in reversed(events.json())] == [
        ("patient.create", "success", pid),
        ("patient.read", "success", pid),
        ("patient.list", "success", None),
        ("patient.update", "success", pid),
        ("patient.doctors", "success", pid),
        ("patient.delete", "success", pid),
        ("patient.read", "not_found", pid),
    ]
