"""The `healthcare serve` command as a real process, for tests that need a real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
import pytest

CLI = [sys.executable, "-m", "healthcare.entrypoints.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(**settings: str) -> dict[str, str]:
    """What a served test server runs with: the memory database, a key, cheap hashing and a
    free port, with ``settings`` (variable names as keywords) over them."""
    return {
        "DATABASE_URL": "memory://",
        "SECRET_KEY": "served-test-secret-key-long-enough",
        "BCRYPT_ROUNDS": "4",
        "PORT": str(free_port()),
        **settings,
    }


@contextmanager
def served(
    env: Mapping[str, str],
    cwd: Path,
    log: IO[bytes] | None = None,
    *,
    without: Collection[str] = (),
) -> Iterator[tuple[str, int]]:
    """``healthcare serve`` with ``env`` (which names the PORT) over this process's own
    environment, less the variables named in ``without``, until the block ends: (base URL,
    port). Its log (stderr) goes to ``log`` if given."""
    port = int(env["PORT"])
    inherited = {name: value for name, value in os.environ.items() if name not in without}
    server = subprocess.Popen(
        [*CLI, "serve"],
        env={**inherited, **env},
        cwd=cwd,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=log if log is not None else subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not start within 30 s")
        yield base, port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
