"""Prometheus metrics at /metrics: behind METRICS_TOKEN, off without it, and what they count."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import psycopg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from healthcare.adapters.audit_trail import BufferedAuditTrail
from healthcare.adapters.persistence.memory import MemoryStore, MemoryUnitOfWork
from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.adapters.persistence.sqlalchemy.pool import error_kind
from healthcare.domain.errors import Unavailable
from healthcare.entrypoints.container import Container, build_container
from healthcare.entrypoints.http.access_log import AccessLog, AccessLogWriter
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.metrics import (
    SAMPLE_SECONDS,
    Metrics,
    Sampler,
    prepare_multiprocess_directory,
)
from healthcare.entrypoints.settings import Settings
from tests.e2e.conftest import sign_up
from tests.integration.served import served as serving_process
from tests.integration.served import server_env

TOKEN = "metrics-token-for-the-tests"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the text format (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if found == labels:
            return float(match.group(3))
    return 0.0


@dataclasses.dataclass
class Served:
    client: AsyncTestClient[AccessLog]
    container: Container
    metrics: Metrics


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    metered = dataclasses.replace(settings, metrics_token=TOKEN, login_attempts_per_username=2)
    container = build_container(metered)
    metrics = Metrics(CollectorRegistry())
    writer = AccessLogWriter(interval=3600)
    app = AccessLog(create_app(container, metrics=metrics), writer, metrics=metrics)
    async with AsyncTestClient(app) as client:
        yield Served(client, container, metrics)
    writer.close()


async def test_metrics_need_the_token(served: Served) -> None:
    assert (await served.client.get("/metrics")).status_code == 401
    wrong = await served.client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["content-type"].startswith("application/problem+json")
    assert (await served.client.get("/metrics", headers=SCRAPE)).status_code == 200


async def test_no_metrics_without_a_token(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/metrics", headers=SCRAPE)).status_code == 404


def test_a_fold_puts_each_duration_in_its_bucket_and_keeps_the_rest_for_the_next() -> None:
    metrics = Metrics(CollectorRegistry())
    for seconds in (0.003, 0.005, 0.005, 20.0):  # 0.005 is the bound: `le` counts it in
        metrics.started()
        metrics.finished("GET", "/r", 200, seconds)
    metrics.started()  # still in flight at the fold
    metrics.fold()
    metrics.finished("GET", "/r", 429, 0.001)
    text = metrics.render().decode()
    name = "healthcare_http_request_duration_seconds"
    assert sample(text, name + "_bucket", method="GET", route="/r", le="0.0025") == 0
    assert sample(text, name + "_bucket", method="GET", route="/r", le="0.005") == 3
    assert sample(text, name + "_bucket", method="GET", route="/r", le="10.0") == 3
    assert sample(text, name + "_bucket", method="GET", route="/r", le="+Inf") == 4
    assert sample(text, name + "_sum", method="GET", route="/r") == pytest.approx(20.013)
    assert sample(text, "healthcare_http_requests_in_flight") == 1
    assert sample(text, "healthcare_throttle_refusals_total", route="/r") == 0  # not folded yet
    metrics.fold()
    text = metrics.render().decode()
    assert sample(text, name + "_count", method="GET", route="/r") == 5
    assert (
        sample(text, "healthcare_http_requests_total", method="GET", route="/r", status="200") == 4
    )
    assert sample(text, "healthcare_throttle_refusals_total", route="/r") == 1
    assert sample(text, "healthcare_http_requests_in_flight") == 0


async def test_requests_are_counted_by_route_template_method_and_status(served: Served) -> None:
    client = served.client
    account = await sign_up(client)  # type: ignore[arg-type]
    created = await client.post(
        "/api/patients/",
        headers=account.headers,
        json={"name": "Counted Patient", "age": 30, "gender": "other"},
    )
    patient = created.json()["id"]
    for _ in range(3):
        await client.get(f"/api/patients/{patient}/", headers=account.headers)
    await client.get("/api/patients/999999999/", headers=account.headers)
    for _ in range(3):  # the per-username limit is 2 here: the third is refused
        await client.post(
            "/api/auth/login/", json={"username": account.username, "password": "wrong pass"}
        )
    text = ""
    for _ in range(50):  # the trail writes its buffer every AUDIT_FLUSH_MS, in the app's loop
        text = (await client.get("/metrics", headers=SCRAPE)).text
        if sample(text, "healthcare_audit_events_written_total") >= 7:
            break
        await asyncio.sleep(0.1)
    route = "/api/patients/{patient_id}"
    requests = "healthcare_http_requests_total"
    assert sample(text, requests, method="GET", route=route, status="200") == 3
    assert sample(text, requests, method="GET", route=route, status="404") == 1
    assert sample(text, requests, method="POST", route="/api/patients", status="201") == 1
    assert (
        sample(text, "healthcare_http_request_duration_seconds_count", method="GET", route=route)
        == 4
    )
    assert (
        sample(
            text,
            "healthcare_http_request_duration_seconds_bucket",
            method="GET",
            route=route,
            le="+Inf",
        )
        == 4
    )
    assert sample(text, "healthcare_throttle_refusals_total", route="/api/auth/login") == 1
    # The scrape itself is in flight while it renders.
    assert sample(text, "healthcare_http_requests_in_flight") == 1
    # Reads' and refusals' events go through the buffer: the gets, the 404, the sign-ins.
    assert sample(text, "healthcare_audit_events_buffered_total") >= 7
    assert sample(text, "healthcare_audit_events_written_total") >= 7
    assert sample(text, "healthcare_audit_events_pending") == 0
    assert sample(text, "healthcare_bcrypt_queue_depth") == 0
    if served.container.settings().database_url.startswith("postgresql"):
        size = sample(text, "healthcare_db_pool_size")
        assert 1 <= size <= served.container.settings().db_pool_size
        assert sample(text, "healthcare_db_pool_in_use") == 0
        assert sample(text, "healthcare_db_pool_waiting") == 0


@pytest.mark.postgres
async def test_database_errors_are_counted_by_kind(postgres_url: str) -> None:
    database = Database(postgres_url, pool_size=1)
    metrics = Metrics(CollectorRegistry())
    sampler = Sampler(
        metrics,
        pool=database.pool,
        audit_trail=BufferedAuditTrail(lambda: MemoryUnitOfWork(MemoryStore())),
        hasher=None,
    )
    try:
        unit = database.transaction()
        await unit.write(text("SET LOCAL statement_timeout = 20"))
        with pytest.raises(Unavailable, match="statement_timeout"):  # a 503
            await unit.read(text("SELECT pg_sleep(1)"))
        await unit.close()
        sampler.sample()
        sampler.sample()  # counters grow by what is new, once
    finally:
        await database.dispose()
    text_format = metrics.render().decode()
    assert sample(text_format, "healthcare_db_errors_total", kind="statement_timeout") == 1
    assert sample(text_format, "healthcare_db_errors_total", kind="other") == 0


def test_driver_errors_are_named_by_their_sqlstate() -> None:
    assert error_kind(psycopg.errors.QueryCanceled()) == "statement_timeout"
    assert error_kind(psycopg.errors.LockNotAvailable()) == "lock_timeout"
    assert error_kind(psycopg.errors.DeadlockDetected()) == "deadlock"
    assert error_kind(psycopg.errors.UniqueViolation()) == "integrity"
    assert error_kind(psycopg.errors.AdminShutdown()) == "other"
    assert error_kind(psycopg.OperationalError()) == "other"  # no SQLSTATE at all


# --- several workers: `healthcare serve`, as in production ----------------------------------


@pytest.mark.parametrize("own_directory", [True, False], ids=["operator's directory", "serve's"])
def test_every_worker_is_counted_whichever_answers_the_scrape(
    tmp_path: Path, own_directory: bool
) -> None:
    env = server_env(METRICS_TOKEN=TOKEN, WORKERS="2")
    if own_directory:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
    with serving_process(env, tmp_path, without={"PROMETHEUS_MULTIPROC_DIR"}) as (base, _):
        time.sleep(1.0)  # the second worker
        sent = 200
        for _ in range(sent):  # a new connection each: granian spreads them over the workers
            assert httpx.get(base + "/health").status_code == 200
        # Each worker folds its counts into the shared files once every SAMPLE_SECONDS (and
        # before it answers a scrape): wait for the other worker's fold.
        time.sleep(SAMPLE_SECONDS + 0.5)
        for _ in range(6):  # each scrape on a new connection too, answered by either worker
            text = httpx.get(base + "/metrics", headers=SCRAPE).text
            counted = sample(
                text, "healthcare_http_requests_total", method="GET", route="/health", status="200"
            )
            assert counted >= sent + 1  # and the probe's


def test_serve_prepares_an_empty_directory_for_the_workers(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    created = prepare_multiprocess_directory(environ)
    assert created is not None and environ["PROMETHEUS_MULTIPROC_DIR"] == str(created)
    created.rmdir()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "counter_123.db").write_bytes(b"old")
    assert prepare_multiprocess_directory({"PROMETHEUS_MULTIPROC_DIR": str(mine)}) is None
    assert list(mine.iterdir()) == []
