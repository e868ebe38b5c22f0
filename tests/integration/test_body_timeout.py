"""A client that announces a body and sends only part of it, against a real server: the
body read is bounded (408), and a client that leaves is an info line, not an error."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.served import served, server_env

PARTIAL = (
    b"POST /api/auth/register/ HTTP/1.1\r\n"
    b"Host: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 100\r\n"
    b"\r\n"
    b'{"username'
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    log = tmp_path / "server.log"
    # (LOG_FORMAT: the assertions read the log's fields.)
    env = server_env(BODY_READ_TIMEOUT_MS="400", LOG_FORMAT="json")
    with log.open("wb") as sink, served(env, tmp_path, sink) as (_, port):
        yield port, log


def test_a_body_that_stops_arriving_is_a_408_at_the_bound(server: tuple[int, Path]) -> None:
    port, log = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(PARTIAL)
        started = time.monotonic()
        answer = client.recv(65536)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"application/problem+json" in answer
    assert b"connection: close" in answer.lower()
    assert 0.3 < elapsed < 2.0
    time.sleep(0.3)  # the access log's writer
    lines = log.read_text()
    assert '"level":"error"' not in lines and "Traceback" not in lines, lines
    assert '"status":408' in lines, lines


def test_a_client_that_leaves_half_way_is_an_info_line(server: tuple[int, Path]) -> None:
    port, log = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
        client.sendall(PARTIAL)
        time.sleep(0.1)
    time.sleep(0.5)
    lines = log.read_text()
    assert '"level":"error"' not in lines and "Traceback" not in lines, lines
    assert '"level":"info"' in lines and "disconnected" in lines, lines
    assert '"status":499' in lines and '"status":500' not in lines, lines
