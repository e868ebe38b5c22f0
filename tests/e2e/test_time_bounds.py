"""Time bounds and dependencies, seen from the HTTP API: a request blocked in the database
ends at its bound as a 503 with Retry-After."""

from __future__ import annotations

import logging
import time

import psycopg
import pytest
from litestar.testing import AsyncTestClient

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.settings import Settings
from tests.conftest import libpq_url
from tests.e2e.conftest import PATIENT, SECRET, assert_problem, create_patient, sign_up


@pytest.mark.postgres
async def test_a_request_blocked_by_a_lock_is_a_503_at_the_lock_timeout(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bounded = Settings(
        database_url=postgres_url,
        secret_key=SECRET,
        bcrypt_rounds=4,
        db_lock_timeout_ms=200,
        db_pool_size=1,
    )
    async with AsyncTestClient(create_app(build_container(bounded))) as client:
        owner = await sign_up(client)
        patient = await create_patient(client, owner)
        holder = await psycopg.AsyncConnection.connect(libpq_url(postgres_url))
        try:
            # Another session holds the patient's row, as a long transaction would.
            await holder.execute("SELECT 1 FROM patient WHERE id = %s FOR UPDATE", [patient["id"]])
            caplog.clear()
            caplog.set_level(logging.INFO)
            started = time.monotonic()
            blocked = await client.put(
                f"/api/patients/{patient['id']}/", json=PATIENT, headers=owner.headers
            )
            elapsed = time.monotonic() - started
        finally:
            await holder.close()
        body = assert_problem(blocked, 503)
        assert body["type"] == "urn:healthcare:problem:unavailable"
        assert blocked.headers["retry-after"] == "1"
        assert elapsed < 1.5
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert warnings[0].levelno == logging.WARNING
        assert "lock_timeout" in warnings[0].getMessage()
        # The pool's only connection is back and sound: the next request is served.
        again = await client.put(
            f"/api/patients/{patient['id']}/", json=PATIENT, headers=owner.headers
        )
        assert again.status_code == 200, again.text
