"""One structured line per request, and no secret or patient field in any log line."""

from __future__ import annotations

import json
import logging

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcare.entrypoints.http.access_log import AccessLog
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
    async with AsyncTestClient(AccessLog(app)) as client:  # type: ignore[type-var]
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
