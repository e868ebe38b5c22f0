"""Health, readiness and the OpenAPI document."""

from __future__ import annotations

import subprocess
import sys

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcare.adapters.security.passwords import BcryptPasswordHasher
from healthcare.domain.entities import Principal
from healthcare.entrypoints.container import Container, build_container, hash_threads_per_worker
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.settings import Settings
from tests.e2e.conftest import PASSWORD, PATIENT, SECRET, assert_problem, create_patient, sign_up

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
    put_doctor = document["paths"]["/api/doctors/{doctor_id}"]["put"]["responses"]
    assert {"200", "400", "401", "403", "404"} <= put_doctor.keys()
    assert "application/problem+json" in put_doctor["403"]["content"]
    assert (await client.get("/schema")).status_code == 200


async def test_unknown_route_and_method_are_problem_details(client: Client) -> None:
    missing = await client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    wrong = await client.patch("/health")
    assert wrong.status_code == 405


async def test_the_in_memory_adapter_serves_the_api() -> None:
    settings = Settings(database_url="memory://", secret_key=SECRET, bcrypt_rounds=4)
    async with AsyncTestClient(create_app(build_container(settings))) as memory:
        account = await sign_up(memory)
        await create_patient(memory, account)
        listed = await memory.get("/api/patients/", headers=account.headers)
        assert listed.headers["x-total-count"] == "1"
        assert (await memory.get("/ready")).status_code == 200


async def test_requests_are_503_while_the_database_is_away() -> None:
    """Nothing listens on port 1: every route that needs the database says so, with
    Retry-After, instead of a 500; one that does not (health) still answers."""
    settings = Settings(
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/healthcare",
        secret_key=SECRET,
        bcrypt_rounds=4,
        db_pool_timeout=1,
    )
    container = build_container(settings)
    token = container.token_service().issue_access(Principal(user_id=1, is_admin=False)).token
    headers = {"Authorization": f"Bearer {token}"}
    async with AsyncTestClient(create_app(container)) as away:
        for path in ("/api/patients/", "/api/doctors/1/"):
            body = assert_problem(await away.get(path, headers=headers), 503)
            assert body["type"] == "urn:healthcare:problem:unavailable"
        created = await away.post("/api/patients/", json=PATIENT, headers=headers)
        assert_problem(created, 503)
        assert created.headers["retry-after"] == "5"
        login = await away.post("/api/token/", json={"username": "ada", "password": PASSWORD})
        assert_problem(login, 503)
        assert (await away.get("/health")).status_code == 200
        assert (await away.get("/ready")).status_code == 503


def test_each_worker_settles_its_garbage_collector_once_the_app_is_built() -> None:
    # In a fresh interpreter: freezing and thresholds are process-wide.
    probe = (
        "import gc\n"
        "from healthcare.entrypoints.http.asgi import GC_THRESHOLDS, settle_garbage_collector\n"
        "assert gc.get_freeze_count() == 0\n"
        "settle_garbage_collector()\n"
        "assert gc.get_freeze_count() > 0\n"
        "assert gc.get_threshold() == GC_THRESHOLDS\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


@pytest.mark.parametrize(
    ("workers", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (3, 2, 1), (2, 8, 4), (1, 1, 1)]
)
def test_server_workers_share_the_cores_for_hashing(workers: int, cores: int, threads: int) -> None:
    assert hash_threads_per_worker(workers, cores) == threads


async def test_the_container_gives_the_hasher_its_workers_share(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Eight cores, so that the share (four) differs from the hasher's own default (eight)
    # on any machine this runs on.
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    settings = Settings(database_url="memory://", secret_key=SECRET, bcrypt_rounds=4, workers=2)
    hasher = build_container(settings).password_hasher()
    assert isinstance(hasher, BcryptPasswordHasher)
    try:
        assert hasher._threads == 4  # eight cores between two workers
        assert await hasher.verify("a password", await hasher.hash("a password"))
    finally:
        hasher.close()
