"""Health, readiness and the OpenAPI document."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcare.entrypoints.container import Container
from healthcare.entrypoints.http.app import create_app

Client = AsyncTestClient[Litestar]


class _DownProbe:
    async def is_reachable(self) -> bool:
        return False


async def test_health_and_ready(client: Client) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    assert (await client.get("/ready")).status_code == 200


async def test_ready_is_503_when_the_database_does_not_answer(container: Container) -> None:
    with container.database_probe.override(_DownProbe()):
        async with AsyncTestClient(create_app(container)) as down:
            assert (await down.get("/ready")).status_code == 503
            assert (await down.get("/health")).status_code == 200


async def test_openapi_describes_every_route(client: Client) -> None:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    document = response.json()
    paths = set(document["paths"])
    for path in (
        "/api/auth/register",
        "/api/register",
        "/api/auth/login",
        "/api/token",
        "/api/auth/token/refresh",
        "/api/token/refresh",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/patients",
        "/api/patients/{patient_id}",
        "/api/patients/{patient_id}/doctors",
        "/api/doctors",
        "/api/doctors/{doctor_id}",
        "/api/mappings",
        "/api/mappings/{item_id}",
        "/health",
        "/ready",
    ):
        assert path in paths, path
    create = document["paths"]["/api/patients"]["post"]
    assert "requestBody" in create and "201" in create["responses"]
    assert create["security"] == [{"BearerToken": []}]
    assert "security" not in document["paths"]["/api/auth/login"]["post"]
    patient_in = document["components"]["schemas"]["PatientIn"]["properties"]
    assert patient_in["name"]["minLength"] == 1
    assert patient_in["name"]["maxLength"] == 255
    assert (patient_in["age"]["minimum"], patient_in["age"]["maximum"]) == (0, 150)
    assert (await client.get("/schema")).status_code == 200


async def test_unknown_route_and_method_are_problem_details(client: Client) -> None:
    missing = await client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    wrong = await client.patch("/health")
    assert wrong.status_code == 405
