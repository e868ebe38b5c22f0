"""The servers phase: start the API and the baseline side by side, watch their workers, and
talk to them from the harness (set-up and checks only; the load comes from wrk)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import BENCH, PASSWORD, ROOT, USERNAME, VENV_BIN, Config
from .machine import descendants, rss_kib
from .parity import Answer
from .runtime import CLEANUP, log


def start_orders(rounds: int) -> list[tuple[bool, int]]:
    """Whether the server under test is started before the one it is compared with, and for
    how many rounds: first for half the rounds (the odd one out, if any), then second.

    Of two identical servers started one after the other, the first ran 2-9 % slower in
    each of five sets of rounds (both with metrics off, the order flipped between sets; the
    cause is not known). Every comparison of two servers therefore starts each first for
    half its rounds, and restarts both in between.
    """
    first_half = (rounds + 1) // 2
    return [(True, first_half), (False, rounds - first_half)] if rounds > 1 else [(True, 1)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    database_url: str
    restart: Callable[[], Server] | None = None
    restarts: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ensure_alive(self) -> bool:
        """Start the server again if it has stopped; True if it had to.

        Other people's work shares this machine; a server that something else stopped is
        restarted (and the event reported) rather than failing a long run.
        """
        if self.process.poll() is None or self.restart is None:
            return False
        tail = self.log_path.read_text(errors="replace")[-1500:]
        note = f"{self.name} had exited (code {self.process.returncode}); restarted"
        log(f"WARNING: {note}. Its log ends:\n{tail}")
        CLEANUP.stop(self.process)
        fresh = self.restart()
        self.port, self.process, self.log_path = fresh.port, fresh.process, fresh.log_path
        self.restarts.append(note)
        return True


def server_env(cfg: Config, url: str, port: int, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRANIAN_", "BENCH_"))}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        WORKERS=str(cfg.workers),
        DATABASE_URL=url,
        SECRET_KEY=secret,
        BCRYPT_ROUNDS=str(cfg.bcrypt_rounds),
        # A full run outlasts the default 15 minutes; tokens are minted once at the start.
        ACCESS_TOKEN_MINUTES="240",
        # All load comes from one address (127.0.0.1): the per-address budget for refresh
        # and registration (60 a minute by default) would make the refresh scenario a test
        # of the limiter. The limiter still runs on every request; it just never says no.
        AUTH_REQUESTS_PER_MINUTE="1000000000",
        # The refresh scenario measures rotation (a new refresh token signed and stored per
        # request), as the baseline does: the dearer of the two modes.
        REFRESH_TOKEN_ROTATION="on",
    )
    return env


def _new_log(label: str) -> Path:
    """A log file of its own for each server started, a second one by a name too."""
    path, started = CLEANUP.workdir / f"{label}.log", 1
    while path.exists():
        started += 1
        path = CLEANUP.workdir / f"{label}-{started}.log"
    return path


def start_api(
    cfg: Config, url: str, secret: str, label: str = "api", env: dict[str, str] | None = None
) -> Server:
    """The API as `make run` serves it; env (e.g. METRICS_TOKEN) goes over cfg.api_env."""
    port = free_port()
    log_path = _new_log(label)
    with log_path.open("wb") as out:
        process = CLEANUP.spawn(
            [str(VENV_BIN / "healthcare"), "serve"],
            cwd=ROOT,
            env={**server_env(cfg, url, port, secret), **cfg.api_env, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(
        label,
        port,
        process,
        log_path,
        url,
        restart=lambda: start_api(cfg, url, secret, label + "-restarted", env),
    )
    wait_ready(server, "/ready", cfg.workers)
    return server


def start_baseline(
    cfg: Config,
    url: str,
    secret: str,
    label: str = "baseline",
    directory: Path = BENCH / "baseline",
) -> Server:
    """The bare baseline (bench/baseline/app.py; ``directory``: another tree's)."""
    port = free_port()
    log_path = _new_log(label)
    cmd = [
        str(VENV_BIN / "granian"),
        "--interface",
        "asgi",
        "--loop",
        "uvloop",
        "--workers",
        str(cfg.workers),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--working-dir",
        str(directory),
        "app:app",
    ]
    with log_path.open("wb") as out:
        process = CLEANUP.spawn(
            cmd,
            cwd=directory,
            env=server_env(cfg, url, port, secret),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(
        label,
        port,
        process,
        log_path,
        url,
        restart=lambda: start_baseline(cfg, url, secret, label + "-restarted", directory),
    )
    wait_ready(server, "/health", cfg.workers)
    return server


def wait_ready(server: Server, path: str, workers: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        with contextlib.suppress(OSError, http.client.HTTPException):
            # Answering, and every worker process is up (not just the first to bind).
            if request(server, "GET", path)[0] == 200 and len(worker_pids(server)) >= workers:
                time.sleep(1.0)  # let the other workers finish their start-up
                return
        time.sleep(0.25)
    tail = server.log_path.read_text(errors="replace")[-3000:]
    raise SystemExit(f"{server.name} did not become ready on port {server.port}:\n{tail}")


def worker_pids(server: Server) -> list[int]:
    """granian's worker processes: descendants of the server that are not helpers."""
    pids: list[int] = []
    for pid in descendants(server.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"resource_tracker" in cmdline or b"semaphore_tracker" in cmdline:
            continue
        pids.append(pid)
    return sorted(pids)


def memory(server: Server) -> dict[str, Any]:
    per_worker = {pid: rss_kib(pid) for pid in worker_pids(server)}
    return {
        "total_mib": round(sum(per_worker.values()) / 1024, 1),
        "workers_mib": [round(v / 1024, 1) for v in per_worker.values()],
        "pids": list(per_worker),
    }


# --- HTTP from the harness (set-up and checks only; load comes from wrk) ----------------


def request(
    server: Server,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 30.0,
) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        response = conn.getresponse()
        raw = response.read()
        headers_out = {k.lower(): v for k, v in response.getheaders()}
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return Answer(response.status, headers_out, payload)
    finally:
        conn.close()


def login(server: Server, user: int) -> dict[str, Any]:
    status, _, body = request(
        server,
        "POST",
        "/api/auth/login/",
        {"username": USERNAME.format(user), "password": PASSWORD},
    )
    if status != 200 or not isinstance(body, dict):
        raise SystemExit(f"login of {USERNAME.format(user)} on {server.name}: {status} {body}")
    return body


def login_many(server: Server, users: list[int], parallel: int = 4) -> list[dict[str, Any]]:
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(lambda u: login(server, u), users))
