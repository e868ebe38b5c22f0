"""The data-scale phase: get_patient and list_patients at two table sizes, same users and
tokens, a database each, the sizes alternating round by round; and on the larger, a search
page and a filtered, ordered page against the unfiltered page of the same round."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

from .config import SCALE_LIST_TARGET, SCALE_LISTS, Config, Sizes
from .database import database_name, prepare_database, with_database
from .load import Load, ms, write_lua_data
from .runtime import CLEANUP, log
from .servers import start_api, start_baseline


def scale_check(
    cfg: Config, secret: str, password_hash: str, tokens: dict[int, str]
) -> dict[str, Any]:
    """get_patient and list_patients latency at two table sizes, same users and tokens.

    Each size has a database of its own, and the sizes alternate round by round, as the API
    and the baseline do, so that the machine's drift over the minutes of the check falls on
    both sizes alike rather than on whichever was measured later.
    """
    small, large = cfg.scale_sizes
    name = database_name(cfg.database_url)
    urls = {
        small: with_database(cfg.database_url, name + "_scale_small"),
        large: with_database(cfg.database_url, name + "_scale"),
    }
    loads: dict[int, Load] = {}
    for rows, url in urls.items():
        sizes = Sizes(cfg.sizes.users, rows, cfg.sizes.doctors)
        prepare_database(cfg, url, sizes, password_hash, with_directory=False)
        data = CLEANUP.workdir / f"scale-{rows}.lua"
        write_lua_data(data, sizes, rows, tokens)
        loads[rows] = Load(cfg, data)
    result: dict[str, Any] = {"sizes": [small, large], "users": cfg.sizes.users, "runs": {}}
    restarts: list[str] = []
    log(f"scale: {small} and {large} patient rows, alternating")
    # As many rounds as the scenarios get: one round's p50 at 64 connections moves with the
    # machine's noise by as much as the target.
    for round_number in range(cfg.rounds):
        # A B, then B A: neither size is always the one measured after a restart of the other.
        order = [small, large] if round_number % 2 == 0 else [large, small]
        for rows in order:
            url = urls[rows]
            # Servers anew each round: one server process's latency at one connection
            # differed from another's by 8-12 % on the same data, by where the scheduler
            # happened to place it; new servers each round let the medians average that.
            servers = (
                start_api(cfg, url, secret, f"api-scale-{rows}"),
                start_baseline(cfg, url, secret, f"baseline-scale-{rows}"),
            )
            # The searched and filtered pages on the larger size only, right after its
            # unfiltered page, on the same servers (issue 16's 1.5x).
            scenarios = ("get_patient", "list_patients", *(SCALE_LISTS if rows == large else ()))
            try:
                for scenario in scenarios:
                    for server in servers:
                        for connections in scale_connections(cfg):
                            load = loads[rows]
                            load.wrk(server, scenario, max(cfg.warmup, 1), connections=connections)
                            run = load.measure(
                                server, scenario, cfg.duration, connections=connections
                            )
                            key = _scale_key(server.name.split("-")[0], scenario, connections, cfg)
                            result["runs"].setdefault(f"{key}:{rows}", []).append(asdict(run))
            finally:
                for server in servers:
                    CLEANUP.stop(server.process)
                    restarts += server.restarts
    result["restarts"] = restarts
    verdicts: dict[str, dict[str, Any]] = {}
    for target in ("api", "baseline"):
        for name in (
            _scale_key(target, scenario, connections, cfg)
            for connections in scale_connections(cfg)
            for scenario in ("get_patient", "list_patients")
        ):
            a = _medians(result["runs"][f"{name}:{small}"])
            b = _medians(result["runs"][f"{name}:{large}"])
            change50 = (b["p50_ms"] / a["p50_ms"] - 1) * 100 if a["p50_ms"] else 0.0
            change99 = (b["p99_ms"] / a["p99_ms"] - 1) * 100 if a["p99_ms"] else 0.0
            verdicts[name] = {
                "p50_ms": [ms(a["p50_ms"]), ms(b["p50_ms"])],
                "p99_ms": [ms(a["p99_ms"]), ms(b["p99_ms"])],
                "rps": [a["rps"], b["rps"]],
                "p50_change_percent": round(change50, 1),
                "p99_change_percent": round(change99, 1),
                "errors": sum(
                    run["errors"]
                    for size in (small, large)
                    for run in result["runs"][f"{name}:{size}"]
                ),
                # Judged on the median: at 64 connections the p99 of one short round moves
                # by tens of percent between identical runs; it is reported, not judged.
                "pass": abs(change50) < 20,
            }
    result["verdicts"] = verdicts
    result["lists"] = list_verdicts(result["runs"], large, cfg)
    return result


def list_verdicts(
    runs: dict[str, list[dict[str, Any]]], rows: int, cfg: Config
) -> dict[str, dict[str, Any]]:
    """Each of SCALE_LISTS against list_patients at ``rows``, per server and load: the p50
    of the page ÷ the p50 of the unfiltered page, round by round (same servers, one after the
    other), and the median of those ratios. Passes at most SCALE_LIST_TARGET."""
    verdicts: dict[str, dict[str, Any]] = {}
    for target in ("api", "baseline"):
        for connections in scale_connections(cfg):
            plain = runs[f"{_scale_key(target, 'list_patients', connections, cfg)}:{rows}"]
            for scenario in SCALE_LISTS:
                key = _scale_key(target, scenario, connections, cfg)
                page = runs[f"{key}:{rows}"]
                ratios = [
                    p["p50_ms"] / u["p50_ms"]
                    for p, u in zip(page, plain, strict=True)
                    if u["p50_ms"]
                ]
                ratio = statistics.median(ratios) if ratios else 0.0
                a, b = _medians(plain), _medians(page)
                verdicts[key] = {
                    "unfiltered_p50_ms": ms(a["p50_ms"]),
                    "p50_ms": ms(b["p50_ms"]),
                    "unfiltered_p99_ms": ms(a["p99_ms"]),
                    "p99_ms": ms(b["p99_ms"]),
                    "rps": round(b["rps"], 1),
                    "unfiltered_rps": round(a["rps"], 1),
                    "ratio": round(ratio, 3),
                    "target": SCALE_LIST_TARGET,
                    "round_ratios": [round(x, 3) for x in ratios],
                    "errors": sum(run["errors"] for run in page),
                    "pass": 0 < ratio <= SCALE_LIST_TARGET
                    and sum(run["errors"] for run in page) == 0,
                }
    return verdicts


def scale_connections(cfg: Config) -> tuple[int, ...]:
    """The data-scale loads: one connection, where latency is the work of one request, and
    the run's connections, where it is mostly the wait behind the others (about connections
    ÷ throughput)."""
    return (1, cfg.connections)


def _scale_key(target: str, scenario: str, connections: int, cfg: Config) -> str:
    # The saturated load keeps the name earlier results used.
    return f"{target}:{scenario}" + ("" if connections == cfg.connections else f"@{connections}")


def _medians(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in ("p50_ms", "p99_ms", "rps")}
