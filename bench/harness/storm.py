"""The login-storm phase: reads' latency idle, beside busy cores, and while logins saturate
the CPU with bcrypt."""

from __future__ import annotations

import os
import subprocess
import sys
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
from .pairs import alongside, alternating_pairs, pair_medians, per_second, ratio
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
    ratios is judged, as the scenarios' ratios are (see pairs.py).
    """
    reads: WrkOptions = {
        "connections": STORM_READ_CONNECTIONS,
        "extra_env": {"BENCH_DELAY_MS": str(STORM_READ_DELAY_MS)},
    }
    duration = max(cfg.duration, LOGIN_MIN_SECONDS)

    def pair(_index: int) -> dict[str, Any]:
        idle = load.measure(server, "get_patient", duration, **reads)
        floor = reads_beside_busy_cores(load, server, duration, reads)
        during, logins = alongside(
            lambda: load.wrk(
                server, "login", duration + 4, connections=LOGIN_CONNECTIONS, timeout_s=30.0
            ),
            lambda: load.measure(server, "get_patient", duration, **reads),
            ramp_s=2.0,  # let the storm reach its steady state
            join_timeout_s=duration + 120,
        )
        return {
            "idle_rps": idle.rps,
            "idle_p50_ms": ms(idle.p50_ms),
            "idle_p99_ms": ms(idle.p99_ms),
            "storm_rps": during.rps,
            "storm_p50_ms": ms(during.p50_ms),
            "storm_p99_ms": ms(during.p99_ms),
            "login_rps_during": per_second(logins) if logins else 0.0,
            "read_errors": idle.errors + during.errors,
            "login_errors": sum(logins.get("errors", {}).values()),
            "p99_ratio": ratio(during.p99_ms, idle.p99_ms),
            "floor_p50_ms": ms(floor.p50_ms),
            "floor_p99_ms": ms(floor.p99_ms),
            "floor_p99_ratio": ratio(floor.p99_ms, idle.p99_ms),
        }

    pairs = alternating_pairs(min(cfg.rounds, STORM_PAIRS), STORM_SETTLE_SECONDS, pair)
    medians = pair_medians(pairs)
    p99_ratio = medians["p99_ratio"]
    # Judged on the storm alone; the busy loops' ratio says how much of it the machine sets.
    return {
        "target": server.name,
        "reads": f"get_patient, {STORM_READ_CONNECTIONS} connections, "
        f"{STORM_READ_DELAY_MS} ms pause between a connection's requests",
        "storm": f"login, {LOGIN_CONNECTIONS} connections",
        **medians,
        "read_errors": sum(pair["read_errors"] for pair in pairs),
        "login_errors": sum(pair["login_errors"] for pair in pairs),
        "pairs": pairs,
        "pass": 0 < p99_ratio <= 2.0,
    }
