"""The memory-soak phase: per-worker RSS before, during and after many mixed requests."""

from __future__ import annotations

import threading
import time
from typing import Any

from .config import Config
from .load import Load, ms
from .runtime import log
from .servers import Server, memory


def soak(cfg: Config, load: Load, server: Server) -> dict[str, Any]:
    """Per-worker RSS before and after cfg.soak_requests mixed requests."""
    threads = min(cfg.threads, cfg.connections)
    warm = max(cfg.soak_requests // 20, 1000)
    log(f"memory soak on {server.name}: {warm} warm-up requests, then {cfg.soak_requests}")
    load.wrk(server, "mixed", 600, extra_env={"BENCH_STOP_AFTER": str(warm // threads)})
    start = memory(server)
    samples: list[dict[str, Any]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while not stop.wait(2.0):
            samples.append({"t": round(time.monotonic() - t0, 1), **memory(server)})

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run = load.measure(
            server, "mixed", 600, extra_env={"BENCH_STOP_AFTER": str(cfg.soak_requests // threads)}
        )
    finally:
        stop.set()
        sampler.join(10)
    end = memory(server)
    growth: list[float] = []
    for pid, before in zip(start["pids"], start["workers_mib"], strict=False):
        after = end["workers_mib"][end["pids"].index(pid)] if pid in end["pids"] else 0.0
        growth.append(round((after / before - 1) * 100, 1) if before else 0.0)
    return {
        "target": server.name,
        "requests": run.requests,
        "rps": run.rps,
        "errors": run.errors,
        "p99_ms": ms(run.p99_ms),
        "workers_start_mib": start["workers_mib"],
        "workers_end_mib": end["workers_mib"],
        "workers_max_mib": [
            max((s["workers_mib"][i] for s in samples if len(s["workers_mib"]) > i), default=0.0)
            for i in range(len(start["workers_mib"]))
        ],
        "growth_percent": growth,
        "same_workers": start["pids"] == end["pids"],
        "pass": bool(growth)
        and all(abs(g) <= 10 for g in growth)
        and start["pids"] == end["pids"]
        and run.requests >= cfg.soak_requests * 0.99,
        "samples": samples,
    }
