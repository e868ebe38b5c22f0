"""The login-storm phase: reads' latency idle, beside busy cores, and while logins saturate
the CPU with bcrypt."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

from .config import (
    LOGIN_CONNECTIONS,
    LOGIN_MIN_SECONDS,
    STORM_PAIRS,
    STORM_READ_CONNECTIONS,
    STORM_READ_DELAY_MS,
    STORM_SETTLE_SECONDS,
    Config,
)
from .load import Load, Run, WrkOptions, ms
from .runtime import CLEANUP
from .servers import Server

# A busy loop at the lowest scheduling class there is: it runs only on CPU time that nothing
# else wants, and is preempted at once by anything that wakes.
IDLE_CLASS_BUSY_LOOP = (
    "import os\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\nwhile True: pass\n"
)


def reads_beside_busy_cores(load: Load, server: Server, duration: float, reads: WrkOptions) -> Run:
    """The storm's reads while every core runs an IDLE_CLASS_BUSY_LOOP in a process of its
    own: what keeping the cores busy costs the reads on this machine, whoever keeps them
    busy and however politely. The storm's hashes run at nice 19, a step above."""
    loops = [
        CLEANUP.spawn(
            [sys.executable, "-c", IDLE_CLASS_BUSY_LOOP],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        time.sleep(1.0)
        return load.measure(server, "get_patient", duration, **reads)
    finally:
        for loop in loops:
            CLEANUP.stop(loop, grace=2.0)


def storm_check(cfg: Config, load: Load, server: Server) -> dict[str, Any]:
    """Reads' p99, idle and while logins saturate the CPU with bcrypt.

    Idle and storm windows alternate (up to STORM_PAIRS pairs) and the median of the pairs'
    ratios is judged, as the scenarios' ratios are: one window's p99 is its 1 % slowest
    requests, and on a shared machine a single pair moves by a tenth or more between
    identical runs.
    """
    reads: WrkOptions = {
        "connections": STORM_READ_CONNECTIONS,
        "extra_env": {"BENCH_DELAY_MS": str(STORM_READ_DELAY_MS)},
    }
    duration = max(cfg.duration, LOGIN_MIN_SECONDS)
    pairs: list[dict[str, Any]] = []
    for _ in range(min(cfg.rounds, STORM_PAIRS)):
        # A storm (or the login scenario before the first pair) ends with logins still
        # hashing on the server that wrk has stopped waiting for: let them finish first.
        time.sleep(STORM_SETTLE_SECONDS)
        idle = load.measure(server, "get_patient", duration, **reads)
        floor = reads_beside_busy_cores(load, server, duration, reads)
        storm_result: dict[str, Any] = {}

        def storm(into: dict[str, Any] = storm_result) -> None:
            into.update(
                load.wrk(
                    server, "login", duration + 4, connections=LOGIN_CONNECTIONS, timeout_s=30.0
                )
            )

        thread = threading.Thread(target=storm, daemon=True)
        thread.start()
        time.sleep(2.0)  # let the storm reach its steady state
        during = load.measure(server, "get_patient", duration, **reads)
        thread.join(duration + 120)
        login_rps = (
            storm_result["requests"] / (storm_result["duration_us"] / 1e6) if storm_result else 0.0
        )
        pairs.append(
            {
                "idle_rps": idle.rps,
                "idle_p50_ms": ms(idle.p50_ms),
                "idle_p99_ms": ms(idle.p99_ms),
                "storm_rps": during.rps,
                "storm_p50_ms": ms(during.p50_ms),
                "storm_p99_ms": ms(during.p99_ms),
                "login_rps_during": round(login_rps, 1),
                "read_errors": idle.errors + during.errors,
                "login_errors": sum(storm_result.get("errors", {}).values()),
                "p99_ratio": round(during.p99_ms / idle.p99_ms if idle.p99_ms else 0.0, 2),
                "floor_p50_ms": ms(floor.p50_ms),
                "floor_p99_ms": ms(floor.p99_ms),
                "floor_p99_ratio": round(floor.p99_ms / idle.p99_ms if idle.p99_ms else 0.0, 2),
            }
        )

    def median(key: str) -> float:
        return float(statistics.median(pair[key] for pair in pairs))

    ratio = median("p99_ratio")
    # Judged on the storm alone; the busy loops' ratio says how much of it the machine sets.
    return {
        "target": server.name,
        "reads": f"get_patient, {STORM_READ_CONNECTIONS} connections, "
        f"{STORM_READ_DELAY_MS} ms pause between a connection's requests",
        "storm": f"login, {LOGIN_CONNECTIONS} connections",
        **{key: median(key) for key in pairs[0] if not key.endswith("errors")},
        "read_errors": sum(pair["read_errors"] for pair in pairs),
        "login_errors": sum(pair["login_errors"] for pair in pairs),
        "p99_ratio": ratio,
        "pairs": pairs,
        "pass": 0 < ratio <= 2.0,
    }
