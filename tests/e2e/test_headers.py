"""Headers on every response, CORS, and what production mode turns off."""

from __future__ import annotations

import dataclasses

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.settings import Settings
from tests.e2e.conftest import Account

Client = AsyncTestClient[Litestar]


async def test_every_response_has_nosniff_and_a_request_id(client: Client, alice: Account) -> None:
    responses = [
        await client.get("/health"),
        await client.get("/api/patients/", headers=alice.headers),
        await client.get("/api/patients/"),  # 401
        await client.get("/api/nothing-here"),  # no route
        await client.post("/api/patients/", json={}, headers=alice.headers),  # 400
    ]
    ids = set()
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff"
        ids.add(response.headers["x-request-id"])
    assert len(ids) == len(responses)  # one new id per request


async def test_api_responses_are_not_cached(client: Client, alice: Account) -> None:
    for response in (
        await client.get("/api/patients/", headers=alice.headers),
        await client.post(
            "/api/token/", json={"username": alice.username, "password": alice.password}
        ),
    ):
        assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("req-42.abc:DEF_9", True),
        ("x" * 129, False),
        ("has space", False),
        ("<script>", False),
    ],
)
async def test_a_well_formed_request_id_is_echoed(client: Client, sent: str, echoed: bool) -> None:
    response = await client.get("/health", headers={"X-Request-ID": sent})
    assert (response.headers["x-request-id"] == sent) is echoed
    assert response.headers["x-request-id"]


async def test_cors_is_closed_by_default(client: Client) -> None:
    preflight = await client.options(
        "/api/patients/",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_cors_opens_to_named_origins_only(settings: Settings) -> None:
    configured = dataclasses.replace(settings, cors_origins=("https://app.example",))
    async with AsyncTestClient(create_app(build_container(configured))) as browser:
        allowed = await browser.options(
            "/api/patients/",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET"},
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        other = await browser.get("/health", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_docs_can_be_turned_off(settings: Settings) -> None:
    hidden = dataclasses.replace(settings, docs_enabled=False)
    async with AsyncTestClient(create_app(build_container(hidden))) as quiet:
        assert (await quiet.get("/schema/openapi.json")).status_code == 404
        assert (await quiet.get("/health")).status_code == 200
