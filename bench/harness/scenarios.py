"""The scenarios phase: each scenario with wrk, API and baseline alternating, and the table
of medians and targets that the report shows."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .config import (
    AGAINST_THE_API,
    IN_FLIGHT_SHARE,
    LOGIN_CONNECTIONS,
    LOGIN_MIN_SECONDS,
    P99_TARGET_MS,
    P99_VS_BASELINE,
    P99_VS_BASELINE_SCENARIOS,
    READ_TARGET,
    READS,
    TITLES,
    WRITE_TARGET,
    WRITES,
    Config,
    Sizes,
)
from .load import Load, Run, WrkOptions, ms, write_refresh_pools
from .runtime import CLEANUP, log
from .servers import Server, login_many


class RefreshPools:
    """Mints the refresh scenario's tokens: before each refresh round, fresh login chains
    through the API, one pool per wrk thread, written to a Lua file (see bench/README.md)."""

    def __init__(self, cfg: Config, api: Server, sizes: Sizes) -> None:
        self.cfg, self.api, self.sizes = cfg, api, sizes
        self.minted = 0
        self.threads = min(cfg.threads, cfg.connections)
        self.per_thread = cfg.connections // self.threads + 4

    def __call__(self) -> Path:
        count = self.per_thread * self.threads
        users = [(self.minted + i) % self.sizes.users + 1 for i in range(count)]
        fresh = [p["refresh"] for p in login_many(self.api, users)]
        self.minted += count
        path = CLEANUP.workdir / f"refresh-{self.minted}.lua"
        write_refresh_pools(path, [fresh[i :: self.threads] for i in range(self.threads)])
        return path


def scenario_runs(
    cfg: Config, load: Load, api: Server, baseline: Server, minter: Callable[[], Path]
) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {}
    for scenario in cfg.scenarios:
        log(f"scenario {scenario} ({TITLES[scenario]}): {cfg.rounds} round(s), A/B")
        runs[scenario] = []
        reference = AGAINST_THE_API.get(scenario)
        for _ in range(cfg.rounds):
            if reference is not None:
                runs[scenario] += _against_the_api(cfg, load, api, scenario, reference)
                continue
            for server in (api, baseline):
                kwargs: WrkOptions = {}
                duration = cfg.duration
                if scenario == "login":
                    # Each login waits seconds in the bcrypt queue: a short run would count
                    # only the few that finish, so logins get at least LOGIN_MIN_SECONDS.
                    duration = max(duration, LOGIN_MIN_SECONDS)
                    kwargs = {
                        "connections": min(cfg.connections, LOGIN_CONNECTIONS),
                        "timeout_s": 30.0,
                    }
                elif scenario == "refresh":
                    # Every refresh token is spendable once: a fresh set of login chains
                    # per run, one pool per wrk thread (see scenario.lua).
                    kwargs = {"extra_env": {"BENCH_REFRESH": str(minter())}}
                elif cfg.warmup > 0:
                    load.wrk(server, scenario, cfg.warmup)
                runs[scenario].append(load.measure(server, scenario, duration, **kwargs))
    return runs


def _against_the_api(
    cfg: Config, load: Load, api: Server, scenario: str, reference: str
) -> list[Run]:
    """One round of ``scenario`` and of the API's own ``reference`` scenario, alternating as
    the A/B rounds do; the reference run stands where a baseline run would (its target says
    which it is)."""
    pair = []
    for name in (scenario, reference):
        if cfg.warmup > 0:
            load.wrk(api, name, cfg.warmup)
        run = load.measure(api, name, cfg.duration)
        if name == reference:
            run.target = f"api {reference}"
        pair.append(run)
    return pair


def summarize(cfg: Config, runs: dict[str, list[Run]], hash_seconds: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cores = os.cpu_count() or 1
    for scenario, items in runs.items():
        api = [r for r in items if r.target == "api"]
        base = [r for r in items if r.target != "api"]  # the baseline, or the API's reference
        ratios = [a.rps / b.rps for a, b in zip(api, base, strict=True) if b.rps]
        ratio = statistics.median(ratios) if ratios else 0.0
        p99_ratios = [a.p99_ms / b.p99_ms for a, b in zip(api, base, strict=True) if b.p99_ms]
        api_rps = statistics.median(r.rps for r in api)
        row: dict[str, Any] = {
            "scenario": scenario,
            "request": TITLES[scenario],
            "kind": "read" if scenario in READS else "write" if scenario in WRITES else "login",
            "connections": api[0].connections,
            "rounds": len(api),
            "api_rps": round(api_rps, 1),
            "baseline_rps": round(statistics.median(r.rps for r in base), 1),
            "compared_with": base[0].target,
            "ratio": round(ratio, 3),
            "round_ratios": [round(x, 3) for x in ratios],
            "api_p50_ms": ms(statistics.median(r.p50_ms for r in api)),
            "api_p99_ms": ms(statistics.median(r.p99_ms for r in api)),
            "baseline_p50_ms": ms(statistics.median(r.p50_ms for r in base)),
            "baseline_p99_ms": ms(statistics.median(r.p99_ms for r in base)),
            # API p99 ÷ baseline p99 of the same round, the median of the rounds.
            "p99_ratio": round(statistics.median(p99_ratios), 3) if p99_ratios else 0.0,
            # Little's law: in a closed loop every connection should have a request
            # outstanding. Far fewer means the server left connections unread (a server
            # that serves some connections and starves the rest shows a flattering p99).
            "api_in_flight": round(statistics.median(r.in_flight for r in api), 1),
            "baseline_in_flight": round(statistics.median(r.in_flight for r in base), 1),
            "api_errors": sum(r.errors for r in api),
            "baseline_errors": sum(r.errors for r in base),
            "api_memory_mib": [api[0].memory_start_mib, api[-1].memory_end_mib],
            "baseline_memory_mib": [base[0].memory_start_mib, base[-1].memory_end_mib],
            "api_db_connects": sum(r.db_sessions_opened for r in api),
            "baseline_db_connects": sum(r.db_sessions_opened for r in base),
            # Share of the machine's CPU time (all rounds, both servers) that other
            # people's processes took: above a few percent, treat the numbers with care.
            "foreign_cpu_percent": round(
                100
                * sum(r.extra.get("foreign_cpu_s", 0.0) for r in items)
                / (cores * sum(r.duration_s for r in items)),
                1,
            ),
        }
        checks: dict[str, bool] = {"zero_errors": row["api_errors"] == 0}
        if scenario == "login":
            floor = 0.8 * cores / hash_seconds
            row["target"] = f">= {floor:.1f} rps (0.8 x {cores} cores / {hash_seconds:.3f} s)"
            checks["throughput"] = api_rps >= floor
        else:
            wanted = READ_TARGET if scenario in READS else WRITE_TARGET
            row["target"] = f">= {wanted:.2f}"
            checks["ratio"] = ratio >= wanted
            checks["p99_under_50ms"] = row["api_p99_ms"] < P99_TARGET_MS
            if scenario in P99_VS_BASELINE_SCENARIOS:
                row["target"] += f", p99 <= {P99_VS_BASELINE:.2f} x baseline"
                checks["p99_vs_baseline"] = 0 < row["p99_ratio"] <= P99_VS_BASELINE
            checks["every_connection_served"] = (
                row["api_in_flight"] >= IN_FLIGHT_SHARE * row["connections"]
            )
        row["checks"] = checks
        row["pass"] = all(checks.values())
        rows.append(row)
    return rows
