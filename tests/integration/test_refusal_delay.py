"""A refused sign-in against a real server: its 429 comes after LOGIN_REFUSAL_DELAY_MS, and a
client that leaves during the delay costs nothing but a log line of the refusal, no error."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import httpx

from tests.integration.served import served, server_env

DELAY_MS = 500
WRONG = json.dumps({"username": "ann", "password": "not the password"}).encode()
REQUEST = (
    b"POST /api/auth/login/ HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: %d\r\n"
    b"\r\n" % len(WRONG)
) + WRONG


def test_a_client_that_leaves_during_the_refusal_delay_is_no_error(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    env = server_env(
        LOGIN_ATTEMPTS_PER_USERNAME="1",
        LOGIN_REFUSAL_DELAY_MS=str(DELAY_MS),
        LOG_FORMAT="json",  # (the assertions read its fields)
    )
    with log.open("wb") as sink, served(env, tmp_path, sink) as (base, port):
        account = {"username": "ann", "email": "ann@example.org", "password": "long enough pw"}
        assert httpx.post(f"{base}/api/auth/register/", json=account).status_code == 201
        wrong = httpx.post(f"{base}/api/auth/login/", content=WRONG)
        assert wrong.status_code == 401  # the account's one attempt: it is locked now
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(REQUEST)
            time.sleep(0.1)  # well inside the delay
        time.sleep(DELAY_MS / 1000 + 0.5)  # its end, and the access log's writer
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert not [line for line in lines if line["level"] in ("error", "critical")], lines
    assert "Traceback" not in log.read_text()
    refused = [line for line in lines if line.get("status") == 429]
    assert len(refused) == 1, lines
    assert refused[0]["duration_ms"] >= DELAY_MS
