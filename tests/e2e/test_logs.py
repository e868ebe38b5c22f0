"""One structured line per request, written off the event loop, and no secret or patient field
in any log line."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcare.entrypoints.http.access_log import AccessLine, AccessLog, AccessLogWriter
from healthcare.entrypoints.logs import JsonFormatter, quiet_libraries
from tests.e2e.conftest import PASSWORD, unique


async def test_access_lines_are_json_without_secrets_or_patient_data(
    app: Litestar, caplog: pytest.LogCaptureFixture
) -> None:
    username = unique("logged")
    patient_name = f"Secret Patient {unique()}"
    notes = f"diagnosis-{unique()}"
    quiet_libraries()  # as configure_logging does; everything else at DEBUG
    caplog.set_level(logging.DEBUG)
    logged = AccessLog(app)
    async with AsyncTestClient(logged) as client:
        await client.post(
            "/api/auth/register/",
            json={"username": username, "email": f"{username}@x.org", "password": PASSWORD},
        )
        tokens = (
            await client.post("/api/auth/login/", json={"username": username, "password": PASSWORD})
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access']}", "X-Request-ID": "trace-1"}
        created = await client.post(
            "/api/patients/",
            headers=headers,
            json={"name": patient_name, "age": 40, "gender": "male", "notes": notes},
        )
        patient_id = created.json()["id"]
        await client.get(f"/api/patients/{patient_id}/", headers=headers)
        await client.post("/api/auth/login/", json={"username": username, "password": "wrong pw!"})
        await client.post("/api/auth/token/refresh/", json={"refresh": tokens["refresh"]})
        await client.get("/api/no-such-route")
    logged.writer.close()  # no writer thread outlives its test

    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    everything = "\n".join(lines)
    for secret in (
        PASSWORD,
        "wrong pw!",
        tokens["access"],
        tokens["refresh"],
        patient_name,
        notes,
        tokens["access"].split(".")[2],
    ):
        assert secret not in everything

    access = [entry for entry in map(json.loads, lines) if entry["logger"] == "healthcare.access"]
    assert len(access) == 7
    fetched = next(a for a in access if a["request_id"] == "trace-1" and a["method"] == "GET")
    assert fetched["path"] == "/api/patients/{patient_id}"  # the template, not the id
    assert fetched["status"] == 200
    assert fetched["user_id"] == created.json()["created_by"]
    assert isinstance(fetched["duration_ms"], float)
    assert {a["status"] for a in access} >= {201, 200, 401, 404}
    assert any(a["path"] == "(unmatched)" for a in access)


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "healthcare.access"]


async def test_access_lines_reach_the_log_while_the_app_runs(
    app: Litestar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    writer = AccessLogWriter(interval=0.02)
    try:
        async with AsyncTestClient(AccessLog(app, writer)) as client:
            await client.get("/health", headers={"X-Request-ID": "soon-1"})
            for _ in range(100):  # the writer thread's turn comes within its interval
                if _access_records(caplog):
                    break
                await asyncio.sleep(0.01)
            assert [getattr(r, "request_id", None) for r in _access_records(caplog)] == ["soon-1"]
    finally:
        writer.close()


def test_a_line_keeps_the_time_its_request_finished(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    writer = AccessLogWriter(interval=3600)
    finished = time.time() - 5.0
    writer.add(AccessLine(finished, "GET", "/health", 200, 1.5, None, "then"))
    writer.close()
    (record,) = _access_records(caplog)
    assert record.created == finished
    assert (
        json.loads(JsonFormatter().format(record))["time"]
        == datetime.fromtimestamp(finished, UTC).isoformat()
    )


def test_lines_beyond_capacity_are_dropped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    writer = AccessLogWriter(interval=3600, capacity=2)
    for number in range(5):
        writer.add(AccessLine(time.time(), "GET", "/health", 200, 1.0, None, f"r{number}"))
    writer.flush()
    assert [getattr(r, "request_id", None) for r in _access_records(caplog)] == ["r0", "r1", None]
    assert _access_records(caplog)[-1].getMessage() == (
        "3 access log lines dropped: the log could not keep up"
    )
    writer.add(AccessLine(time.time(), "GET", "/health", 200, 1.0, None, "r5"))  # room again
    writer.close()
    assert getattr(_access_records(caplog)[-1], "request_id", None) == "r5"


async def test_pending_lines_are_written_when_the_app_shuts_down(
    app: Litestar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    writer = AccessLogWriter(interval=3600)  # the thread would not write them for an hour
    async with AsyncTestClient(AccessLog(app, writer)) as client:
        await client.get("/health", headers={"X-Request-ID": "last-1"})
        assert _access_records(caplog) == []
    assert [getattr(r, "request_id", None) for r in _access_records(caplog)] == ["last-1"]
    writer.close()
