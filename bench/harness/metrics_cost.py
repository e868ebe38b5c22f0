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
from .servers import Server, request, start_api, start_orders

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

    And the order they are started in flips halfway (``start_orders``): started in one order
    only, the first-started server's slowness was charged to metrics: 0.946 in the run that
    had metrics on started first, 0.965 and 1.019 in a run of each order.
    """
    token = secrets.token_urlsafe(24)
    url = cfg.database_url
    runs: dict[str, list[Run]] = {"on": [], "off": []}
    counted: float | None = 0.0
    off_has_none = True
    for on_first, rounds in start_orders(cfg.rounds):
        order = ("on", "off") if on_first else ("off", "on")
        servers = {}
        for key in order:
            env = {"METRICS_TOKEN": token if key == "on" else ""}
            servers[key] = start_api(cfg, url, secret, f"api-metrics-{key}", env)
        on, off = servers["on"], servers["off"]
        log(f"metrics cost: {SCENARIO}, on :{on.port} vs off :{off.port}, {order[0]} first")
        try:
            for index in range(rounds):
                pair = ((on, "on"), (off, "off"))
                for server, key in pair if index % 2 == 0 else pair[::-1]:
                    if cfg.warmup > 0:
                        load.wrk(server, SCENARIO, cfg.warmup)
                    runs[key].append(load.measure(server, SCENARIO, cfg.duration))
            # Metrics were really on in one and off in the other: a scrape counts requests.
            found = metrics_requests(on, token)
            counted = None if found is None or counted is None else counted + found
            off_has_none = off_has_none and metrics_requests(off, token) is None
        finally:
            CLEANUP.stop(on.process)
            CLEANUP.stop(off.process)
    ratios = [a.rps / b.rps for a, b in zip(runs["on"], runs["off"], strict=True) if b.rps]
    # Each start order's median, then their geometric mean: the orders weigh alike however
    # many rounds each had.
    by_order, at = [], 0
    for _, rounds in start_orders(cfg.rounds):
        if ratios[at : at + rounds]:
            by_order.append(statistics.median(ratios[at : at + rounds]))
        at += rounds
    ratio = statistics.geometric_mean(by_order) if by_order else 0.0
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
        "start_orders": [
            {"first": "on" if on_first else "off", "rounds": rounds, "median": round(m, 3)}
            for (on_first, rounds), m in zip(start_orders(cfg.rounds), by_order, strict=False)
        ],
        "target": f">= {METRICS_COST_TARGET:.2f}",
        "on_p50_ms": median("on", "p50_ms"),
        "on_p99_ms": median("on", "p99_ms"),
        "off_p50_ms": median("off", "p50_ms"),
        "off_p99_ms": median("off", "p99_ms"),
        "requests_counted": counted,
        "checks": checks,
        "pass": all(checks.values()),
    }
