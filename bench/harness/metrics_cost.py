"""The metrics-cost phase: what Prometheus metrics cost each request. The same API twice,
one with METRICS_TOKEN set (metrics on) and one without, get_patient on each in alternating
rounds; judged on the median of the rounds' on ÷ off throughput."""

from __future__ import annotations

import secrets
import statistics
from typing import Any

from .config import METRICS_COST_TARGET, Config
from .load import Load, Run, ms
from .runtime import CLEANUP, log
from .servers import Server, request, start_api

SCENARIO = "get_patient"
REQUESTS_TOTAL = "healthcare_http_requests_total"


def requests_counted(text: str) -> float:
    """The sum of the requests counter's samples in Prometheus' text format."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(REQUESTS_TOTAL + "{")
    )


def metrics_requests(server: Server, token: str) -> float | None:
    """The requests counted by one scrape of /metrics; None if it did not answer 200."""
    status, _, text = request(server, "GET", "/metrics", token=token)
    if status != 200 or not isinstance(text, str):
        return None
    return requests_counted(text)


def metrics_cost_check(cfg: Config, load: Load, secret: str) -> dict[str, Any]:
    """get_patient on an API with metrics on and one with them off, rounds alternating.

    Both servers are started fresh for this phase, side by side on the same database and
    secret (so the run's tokens serve both); only METRICS_TOKEN differs. The order flips
    each round (on, off; off, on; ...) so the machine's drift falls on both alike.
    """
    token = secrets.token_urlsafe(24)
    url = cfg.database_url
    on = start_api(cfg, url, secret, "api-metrics-on", {"METRICS_TOKEN": token})
    off = start_api(cfg, url, secret, "api-metrics-off", {"METRICS_TOKEN": ""})
    log(f"metrics cost: {SCENARIO}, metrics on (:{on.port}) vs off (:{off.port})")
    try:
        runs: dict[str, list[Run]] = {"on": [], "off": []}
        for index in range(cfg.rounds):
            pair = ((on, "on"), (off, "off"))
            for server, key in pair if index % 2 == 0 else pair[::-1]:
                if cfg.warmup > 0:
                    load.wrk(server, SCENARIO, cfg.warmup)
                runs[key].append(load.measure(server, SCENARIO, cfg.duration))
        # Metrics were really on in one and off in the other: a scrape counts the requests.
        counted = metrics_requests(on, token)
        off_has_none = metrics_requests(off, token) is None
    finally:
        CLEANUP.stop(on.process)
        CLEANUP.stop(off.process)
    ratios = [a.rps / b.rps for a, b in zip(runs["on"], runs["off"], strict=True) if b.rps]
    ratio = statistics.median(ratios) if ratios else 0.0
    checks = {
        "ratio": ratio >= METRICS_COST_TARGET,
        "zero_errors": all(r.errors == 0 for r in runs["on"] + runs["off"]),
        "metrics_counted": bool(counted),
        "metrics_off_is_off": off_has_none,
    }
    log(f"metrics cost: on/off {ratio:.3f} (rounds {[round(r, 3) for r in ratios]})")

    def median(key: str, attr: str) -> float:
        return ms(statistics.median(getattr(r, attr) for r in runs[key]))

    return {
        "scenario": SCENARIO,
        "rounds": len(ratios),
        "on_rps": round(median("on", "rps"), 1),
        "off_rps": round(median("off", "rps"), 1),
        "ratio": round(ratio, 3),
        "round_ratios": [round(r, 3) for r in ratios],
        "target": f">= {METRICS_COST_TARGET:.2f}",
        "on_p50_ms": median("on", "p50_ms"),
        "on_p99_ms": median("on", "p99_ms"),
        "off_p50_ms": median("off", "p50_ms"),
        "off_p99_ms": median("off", "p99_ms"),
        "requests_counted": counted,
        "checks": checks,
        "pass": all(checks.values()),
    }
