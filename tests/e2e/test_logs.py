"""One structured line per request, written off the event loop, and no secret or patient field
in any log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from click.testing import CliRunner
from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcare.entrypoints.cli.main import cli
from healthcare.entrypoints.http.access_log import AccessLine, AccessLog, AccessLogWriter
from healthcare.entrypoints.logs import (
    JsonFormatter,
    RequestContext,
    TextFormatter,
    configure_logging,
    log_format,
)
from tests.e2e.conftest import PASSWORD, unique


@pytest.fixture
def json_logs() -> Iterator[Callable[[], str]]:
    """The process's logging as `LOG_FORMAT=json` sets it up (DEBUG, so everything that
    could ever be logged is), written to a buffer; restored afterwards. (httpx, the test
    client, logs each URL it calls; the service never uses it.)"""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("DEBUG", environ={"LOG_FORMAT": "json"})
    logging.getLogger("httpx").setLevel(logging.WARNING)
    buffer = io.StringIO()
    (handler,) = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
    handler.setStream(buffer)
    try:
        yield buffer.getvalue
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.getLogger("httpx").setLevel(logging.NOTSET)


async def test_a_whole_flow_logs_json_lines_without_secrets_or_patient_data(
    app: Litestar, json_logs: Callable[[], str]
) -> None:
    username = unique("logged")
    email = f"{username}@example.org"
    patient_name = f"Secret Patient {unique()}"
    notes = f"diagnosis-{unique()}"
    phone = "+44 20 7946 0123"
    new_password = "another long secret"
    logged = AccessLog(app)
    async with AsyncTestClient(logged) as client:
        await client.post(
            "/api/auth/register/",
            json={"username": username, "email": email, "password": PASSWORD},
        )
        tokens = (
            await client.post("/api/auth/login/", json={"username": email, "password": PASSWORD})
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access']}", "X-Request-ID": "trace-1"}
        created = await client.post(
            "/api/patients/",
            headers=headers,
            json={"name": patient_name, "age": 40, "gender": "male", "notes": notes},
        )
        patient_id = created.json()["id"]
        await client.get(f"/api/patients/{patient_id}/", headers=headers)
        await client.patch(f"/api/patients/{patient_id}/", headers=headers, json={"phone": phone})
        await client.get(f"/api/patients/?search={patient_name}", headers=headers)
        await client.post("/api/auth/login/", json={"username": username, "password": "wrong pw!"})
        await client.post("/api/auth/login/", json={"username": PASSWORD, "password": "x" * 9})
        await client.post("/api/auth/token/refresh/", json={"refresh": tokens["refresh"]})
        await client.post(
            "/api/auth/password/",
            headers=headers,
            json={"current_password": "not it at all", "new_password": new_password},
        )
        await client.post(
            "/api/auth/password/",
            headers=headers,
            json={"current_password": PASSWORD, "new_password": new_password},
        )
        await client.post("/api/auth/logout/", headers=headers, json={"refresh": "x.y.z"})
        await client.get("/api/no-such-route")
    logged.writer.close()  # no writer thread outlives its test
    everything = json_logs()

    for secret in (
        PASSWORD,
        new_password,
        "wrong pw!",
        "not it at all",
        tokens["access"],
        tokens["refresh"],
        tokens["access"].split(".")[2],
        tokens["refresh"].split(".")[2],
        patient_name,
        "Secret Patient",
        notes,
        phone,
        email,
        "$2b$",  # any bcrypt hash
    ):
        assert secret not in everything

    lines = [json.loads(line) for line in everything.splitlines()]  # every line is JSON
    access = [entry for entry in lines if entry["logger"] == "healthcare.access"]
    assert len(access) == 13
    fetched = next(a for a in access if a["request_id"] == "trace-1" and a["method"] == "GET")
    assert fetched["route"] == "/api/patients/{patient_id}"  # the template, not the id
    assert fetched["status"] == 200
    assert fetched["user_id"] == created.json()["created_by"]
    assert isinstance(fetched["duration_ms"], float)
    assert {a["status"] for a in access} >= {201, 200, 204, 400, 401, 404}
    assert any(a["route"] == "(unmatched)" for a in access)


async def test_a_line_logged_while_serving_names_the_request(
    app: Litestar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RequestContext())
    noisy = logging.getLogger("healthcare.test")

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope["path_template"] = "/api/things/{thing_id}"
            scope["state"]["user_id"] = 7
            noisy.warning("something happened")
        await app(scope, receive, send)

    writer = AccessLogWriter(interval=3600)
    async with AsyncTestClient(AccessLog(inner, writer)) as client:
        await client.get("/health", headers={"X-Request-ID": "ctx-1"})
    writer.close()
    (record,) = [r for r in caplog.records if r.name == "healthcare.test"]
    line = json.loads(JsonFormatter().format(record))
    assert (line["request_id"], line["user_id"], line["route"]) == (
        "ctx-1",
        7,
        "/api/things/{thing_id}",
    )
    noisy.warning("outside any request")
    assert "request_id" not in json.loads(JsonFormatter().format(caplog.records[-1]))


def test_text_is_the_default_format_and_names_the_fields() -> None:
    assert log_format({}) == "text"
    assert log_format({"LOG_FORMAT": " JSON "}) == "json"
    with pytest.raises(ValueError, match="LOG_FORMAT must be one of text, json"):
        log_format({"LOG_FORMAT": "xml"})
    record = logging.makeLogRecord(
        {"name": "healthcare.access", "levelname": "INFO", "msg": "request", "status": 200}
    )
    record.request_id = "r-1"
    record.secret = "never"  # not a field: never written
    line = TextFormatter().format(record)
    assert line.endswith("INFO healthcare.access: request status=200 request_id=r-1")
    assert "never" not in line
    assert "never" not in JsonFormatter().format(record)


@pytest.mark.parametrize(
    "fraction",
    # Each side of a millisecond, and the fractions fromtimestamp rounds up into the next
    # millisecond or second.
    [0.0, 0.0004994, 0.0005, 0.0009995, 0.123456, 0.9994999, 0.9995, 0.9999994, 0.9999996],
)
def test_a_text_line_s_time_is_the_iso_time_of_its_record(fraction: float) -> None:
    formatter = TextFormatter()
    for second in (1_796_000_000, 1_796_000_001, 1_796_086_399, 1_796_000_001):
        created = second + fraction
        record = logging.makeLogRecord({"name": "n", "levelname": "INFO", "msg": "m"})
        record.created = created
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert formatter.format(record) == f"{expected} INFO n: m"


def test_the_command_line_refuses_an_unknown_log_format() -> None:
    result = CliRunner().invoke(cli, ["upgrade", "--help"], env={"LOG_FORMAT": "xml"})
    assert result.exit_code == 1
    assert "LOG_FORMAT must be one of text, json, not 'xml'" in result.output


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


@pytest.mark.parametrize("chosen", ["text", "json"])
def test_lines_written_straight_to_the_stream_read_as_their_records_would(
    chosen: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As configure_logging leaves logging, a batch of access lines is formatted and written
    # to the stream at once; with any other handler about, each line is a record. Both must
    # write the same text.
    from healthcare.entrypoints.http import access_log  # noqa: PLC0415

    records = 0
    emit = access_log._emit

    def counted(line: AccessLine) -> None:
        nonlocal records
        records += 1
        emit(line)

    monkeypatch.setattr(access_log, "_emit", counted)
    lines = [
        AccessLine(1_796_000_000.1234, "GET", "/api/patients/{patient_id:int}", 200, 1.5, 7, "a"),
        AccessLine(1_796_000_001.9996, "POST", "(unmatched)", 404, 0.25, None, "b"),
    ]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO", environ={"LOG_FORMAT": chosen})
    straight, through_records = io.StringIO(), io.StringIO()
    try:
        (handler,) = root.handlers
        handler.setStream(straight)  # type: ignore[attr-defined]
        writer = AccessLogWriter(interval=3600)
        for line in lines:
            writer.add(line)
        writer.flush()
        assert records == 0
        handler.setStream(through_records)  # type: ignore[attr-defined]
        root.addHandler(logging.NullHandler())  # another handler: records, as for any
        for line in lines:
            writer.add(line)
        writer.close()
        assert records == 2
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert straight.getvalue() == through_records.getvalue()
    assert straight.getvalue().count("\n") == 2
    assert "user_id=None" in straight.getvalue() or '"user_id":null' in straight.getvalue()
