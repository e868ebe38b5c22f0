"""The report: bench/results/latest.json (everything, each round included) and latest.md."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from .config import (
    IN_FLIGHT_SHARE,
    LOGIN_CONNECTIONS,
    PASSWORD,
    SCALE_LIST_TARGET,
    USERNAME,
    Config,
)
from .load import Run
from .parity import Parity


def _short_ms(value: float) -> str:
    # Two decimals below 10 ms: one connection's latencies are fractions of a millisecond.
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def markdown(report: dict[str, Any]) -> str:
    m, c = report["machine"], report["config"]
    out = [
        "# Benchmark results",
        "",
        f"Run {report['finished_at']} ({'quick' if c['quick'] else 'full'} mode, "
        f"{report['elapsed_s']:.0f} s). Reproduce with `make bench` "
        "(see [bench/README.md](../README.md)).",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu_model']}), {m['ram_gib']} GiB RAM, "
        f"{m['postgresql'].split(',')[0]} (shared_buffers {m['postgresql_shared_buffers']}), "
        f"Python {m['python']}, {m['wrk']}. Server, database and wrk share the machine.",
        "",
        f"Data: {c['sizes']['users']} users, {c['sizes']['patients']} patients, "
        f"{c['sizes']['doctors']} doctors, {c['sizes']['mappings']} mappings. "
        f"Load: wrk, {c['threads']} threads, {c['connections']} connections, "
        f"{c['duration']:.0f} s per round after {c['warmup']:.0f} s warm-up, {c['rounds']} "
        f"round(s) API/baseline alternating; medians. Servers: {c['workers']} granian workers "
        "each, started API first for the first half of the rounds and anew, baseline first, "
        f"for the rest. bcrypt cost {c['bcrypt_rounds']}: "
        f"one hash {report['hash_seconds'] * 1000:.0f} ms.",
        "",
        "| Scenario | API rps | Baseline rps | Ratio | Target | API p50 / p99 ms | "
        "Baseline p50 / p99 ms | Errors (API/base) | API memory MiB (start→end) | "
        "DB connects (API/base) | Outside CPU | Pass |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in report["scenarios"]:
        failed = [k for k, v in r["checks"].items() if not v]
        out.append(
            f"| {r['scenario']} `{r['request']}` | {r['api_rps']:.0f} | {r['baseline_rps']:.0f} "
            f"| {r['ratio']:.2f} | {r['target']} | {r['api_p50_ms']:.1f} / {r['api_p99_ms']:.1f} "
            f"| {r['baseline_p50_ms']:.1f} / {r['baseline_p99_ms']:.1f} "
            f"| {r['api_errors']}/{r['baseline_errors']} "
            f"| {r['api_memory_mib'][0]:.0f}→{r['api_memory_mib'][1]:.0f} "
            f"| {r['api_db_connects']}/{r['baseline_db_connects']} "
            f"| {r['foreign_cpu_percent']:.0f} % "
            f"| {'yes' if r['pass'] else 'no: ' + ', '.join(failed)} |"
        )
    out += [
        "",
        "Ratio is API ÷ baseline requests per second (median of the rounds' ratios). "
        "Targets: reads ≥ 0.80, writes ≥ 0.70, zero errors, API p99 < 50 ms at "
        f"{c['connections']} connections; search_patients, filter_order_patients and "
        "patch_patient also API p99 ≤ 1.25 × the baseline's (the median of the rounds' "
        "ratios); login: throughput ≥ 0.8 × cores ÷ one hash's "
        f"time, run at {LOGIN_CONNECTIONS} connections. The latencies count only if the "
        f"API kept at least {IN_FLIGHT_SHARE:.0%} of the connections busy (requests in "
        "flight = rps × mean latency). DB connects: PostgreSQL sessions "
        "opened during the measured rounds (a pool that keeps its connections opens none). "
        "Outside CPU: the share of the machine's CPU time that processes other than this "
        "benchmark's and PostgreSQL's used during the rounds (a shared machine's noise).",
        "",
    ]
    if report.get("storm"):
        out += [
            "## Login storm",
            "",
            "| Server | Reads idle p50 / p99 ms | Reads during storm p50 / p99 ms | "
            "p99 ratio | Logins/s during | Pass (≤ 2×) | Beside busy loops p50 / p99 ms "
            "(p99 ratio) |",
            "|---|---:|---:|---:|---:|:---:|---:|",
        ]
        for s in report["storm"]:
            out.append(
                f"| {s['target']} | {s['idle_p50_ms']:.1f} / {s['idle_p99_ms']:.1f} | "
                f"{s['storm_p50_ms']:.1f} / {s['storm_p99_ms']:.1f} | {s['p99_ratio']:.2f} "
                f"({', '.join(format(pair['p99_ratio'], '.2f') for pair in s['pairs'])}) "
                f"| {s['login_rps_during']:.1f} | {'yes' if s['pass'] else 'no'} "
                f"| {s['floor_p50_ms']:.1f} / {s['floor_p99_ms']:.1f} "
                f"({s['floor_p99_ratio']:.2f}) |"
            )
        out += [
            "",
            f"Reads: {report['storm'][0]['reads']}; storm: {report['storm'][0]['storm']}. "
            f"Idle and storm windows alternate, {len(report['storm'][0]['pairs'])} pair(s); "
            "medians, and the median of the pairs' p99 ratios (each pair's in brackets). "
            "Beside busy loops: the same reads, with no logins, while each core runs a busy "
            "loop at the lowest scheduling class (SCHED_IDLE) in a process of its own: what "
            "busy cores alone cost the reads on this machine (not judged).",
            "",
        ]
    if report.get("password_storm"):
        out += _password_storm(report["password_storm"])
    if report.get("soak"):
        s = report["soak"]
        out += [
            "## Memory soak",
            "",
            f"{s['requests']} mixed requests on the {s['target']} ({s['rps']:.0f} rps, "
            f"{s['errors']} errors). Worker RSS MiB start → end (max): "
            + ", ".join(
                f"{a:.0f} → {b:.0f} ({mx:.0f})"
                for a, b, mx in zip(
                    s["workers_start_mib"], s["workers_end_mib"], s["workers_max_mib"], strict=False
                )
            )
            + f"; growth {s['growth_percent']} %. Flat within 10 %: "
            f"{'yes' if s['pass'] else 'no'}.",
            "",
        ]
    if report.get("metrics_cost"):
        mc = report["metrics_cost"]
        failed = [k for k, v in mc["checks"].items() if not v]
        out += [
            "## Metrics cost",
            "",
            f"`{mc['scenario']}` on the API with metrics on (`METRICS_TOKEN` set) and the same "
            f"API with them off, side by side, {mc['rounds']} round(s) alternating (the order "
            "flips each round). The servers are started anew halfway, in the other order (of "
            "two identical servers the first started ran 2-9 % slower): on ÷ off is the "
            "geometric mean of each start order's median ("
            + ", ".join(
                f"{o['first']} first: {o['median']:.3f}" for o in mc.get("start_orders", [])
            )
            + ").",
            "",
            "| On rps | Off rps | On ÷ off | Target | On p50 / p99 ms | Off p50 / p99 ms | Pass |",
            "|---:|---:|---:|---|---:|---:|:---:|",
            f"| {mc['on_rps']:.0f} | {mc['off_rps']:.0f} | {mc['ratio']:.3f} "
            f"({', '.join(format(r, '.3f') for r in mc['round_ratios'])}) | {mc['target']} "
            f"| {mc['on_p50_ms']:.1f} / {mc['on_p99_ms']:.1f} "
            f"| {mc['off_p50_ms']:.1f} / {mc['off_p99_ms']:.1f} "
            f"| {'yes' if mc['pass'] else 'no: ' + ', '.join(failed)} |",
            "",
            (
                f"A scrape of the metrics-on server afterwards counted "
                f"{mc['requests_counted']:.0f} requests"
                if mc["requests_counted"]
                else "A scrape of the metrics-on server afterwards counted **no** requests"
            )
            + "; the other answered `/metrics` with "
            + ("no metrics (404)." if mc["checks"]["metrics_off_is_off"] else "**metrics**."),
            "",
        ]
    if report.get("scale"):
        sc = report["scale"]
        small, large = sc["sizes"]
        out += [
            "## Data scale",
            "",
            f"Same {sc['users']} users; {small} and {large} patient rows "
            f"({small // sc['users']} and {large // sc['users']} per user), a database "
            "each, the sizes alternating round by round; medians of "
            f"{len(next(iter(sc['runs'].values())))} round(s) at each size. `@1`: one "
            f"connection, where a request's latency is its own work; the others at "
            f"{c['connections']} connections, where it is mostly the wait behind the rest "
            "(about connections ÷ throughput).",
            "",
            f"| Server: scenario | p50 ms at {small} → {large} | p99 ms | rps | "
            "p50 change | Pass (< 20 %) |",
            "|---|---:|---:|---:|---:|:---:|",
        ]
        for key, v in sc["verdicts"].items():
            out.append(
                f"| {key} | {_short_ms(v['p50_ms'][0])} → {_short_ms(v['p50_ms'][1])} | "
                f"{_short_ms(v['p99_ms'][0])} → {_short_ms(v['p99_ms'][1])} | "
                f"{v['rps'][0]:.0f} → {v['rps'][1]:.0f} | "
                f"{v['p50_change_percent']:+.1f} % | {'yes' if v['pass'] else 'no'} |"
            )
        out.append("")
        if sc.get("lists"):
            out += [
                f"### Search and filters at {large} rows",
                "",
                "The searched page and the filtered, ordered page against the unfiltered page "
                "(`list_patients`), same servers, one after the other in each round: the p50 "
                "of the page ÷ the p50 of the unfiltered page, the median of the rounds' "
                f"ratios. Target (API): at most {SCALE_LIST_TARGET}.",
                "",
                "| Server: page | Unfiltered p50 / p99 ms | Page p50 / p99 ms | rps "
                "(unfiltered → page) | p50 ratio | Pass |",
                "|---|---:|---:|---:|---:|:---:|",
            ]
            for key, v in sc["lists"].items():
                out.append(
                    f"| {key} | {_short_ms(v['unfiltered_p50_ms'])} / "
                    f"{_short_ms(v['unfiltered_p99_ms'])} | {_short_ms(v['p50_ms'])} / "
                    f"{_short_ms(v['p99_ms'])} | {v['unfiltered_rps']:.0f} → {v['rps']:.0f} | "
                    f"{v['ratio']:.2f} | {'yes' if v['pass'] else 'no'} |"
                )
            out.append("")
    if report.get("server_restarts"):
        out += [
            "## Interruptions",
            "",
            "A server stopped during the run and was restarted "
            "(the affected run was repeated): " + "; ".join(report["server_restarts"]),
            "",
        ]
    if report.get("parity"):
        bad = [p["request"] for p in report["parity"] if not p["same"]]
        out += [
            "## Parity",
            "",
            "Both servers gave the same status, body and paging headers for each checked "
            "request, and tokens with the same claims (a difference stops the run before "
            "its rounds)."
            if not bad
            else f"Responses differ: {bad}.",
            "",
        ]
    return "\n".join(out)


def _password_storm(ps: dict[str, Any]) -> list[str]:
    out = [
        "## Password-change storm",
        "",
        "| Throttling | Storm accounts | Storm rps | 400 (hashed) / 429 / 401 / other | "
        "Storm hashes (per s, share of capacity) | Sign-ins idle p50 / p99 ms | "
        "During storm p50 / p99 ms | p50 ratio | p99 ratio (pairs) | Pass |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for v in ps["variants"]:
        failed = [k for k, ok in v["checks"].items() if not ok]
        verdict = (
            "reported" if not v["judged"] else "yes" if v["pass"] else "no: " + ", ".join(failed)
        )
        out.append(
            f"| {v['throttling']} | {v['storm_accounts']} | {v['storm_rps']:.0f} "
            f"| {v['storm_400']:.0f} / {v['storm_429']:.0f} / {v['storm_401']:.0f} / "
            f"{v['storm_other']:.0f} "
            f"| {v['storm_hashes']:.0f} ({v['storm_hashes_per_s']:.2f}/s, "
            f"{v['storm_hash_share']:.0%}) "
            f"| {_short_ms(v['idle_p50_ms'])} / {_short_ms(v['idle_p99_ms'])} "
            f"| {_short_ms(v['storm_p50_ms'])} / {_short_ms(v['storm_p99_ms'])} "
            f"| {v['p50_ratio']:.2f} | {v['p99_ratio']:.2f} "
            f"({', '.join(format(p['p99_ratio'], '.2f') for p in v['pairs'])}) | {verdict} |"
        )
    widened = ", ".join(
        f"{k}={val}"
        for k, val in ps["throttling"]["widened"].items()
        if ps["throttling"]["defaults"].get(k) != val
    )
    out += [
        "",
        f"Sign-ins: {ps['logins']}. Storm: {ps['storm']}, for the whole window "
        f"({ps['window_s']:.0f} s). Idle and storm windows alternate; medians of the pairs "
        "(storm counts: the median pair's). Target: "
        f"{ps['target']} (the median of the pairs' ratios), no failed sign-in, and a storm "
        "answered only 400 or 429. Throttling *defaults*: the production defaults "
        f"({', '.join(f'{k}={val}' for k, val in ps['throttling']['defaults'].items())}); "
        f"*widened*: {widened}, so that every wrong try costs a hash and the hashing "
        "threads' fair share alone is tested. Hashing capacity "
        f"{ps['hash_capacity_per_s']:.1f} hashes/s; a storm below half of it leaves the "
        "threads idle most of the time. Several accounts with the throttle widened get one "
        "share each of the per-account fair share: reported, not judged.",
        "",
    ]
    return out


def build(
    cfg: Config,
    *,
    started: float,
    started_at: datetime,
    machine: dict[str, Any],
    hash_seconds: float,
    parity: Parity,
    rows: list[dict[str, Any]],
    runs: dict[str, list[Run]],
    storm: list[dict[str, Any]],
    soak: dict[str, Any] | None,
    scale: dict[str, Any] | None,
    server_restarts: list[str],
    metrics_cost: dict[str, Any] | None = None,
    password_storm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """latest.json's document; ``all_targets_met`` judges the API's checks only."""
    sizes = cfg.sizes
    report: dict[str, Any] = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - started, 1),
        "machine": machine,
        "config": {
            **{k: v for k, v in asdict(cfg).items() if k not in ("sizes", "out")},
            "sizes": {**asdict(sizes), "mappings": sizes.mappings},
            "database_url": cfg.database_url,
            "login_connections": LOGIN_CONNECTIONS,
        },
        "credentials": {
            "usernames": USERNAME.format(1) + " .. " + USERNAME.format(sizes.users),
            "password": PASSWORD,
        },
        "hash_seconds": round(hash_seconds, 4),
        "token_claims": parity.token_claims,
        "parity": parity.records,
        "scenarios": rows,
        "storm": storm,
        "soak": soak,
        "scale": scale,
        "metrics_cost": metrics_cost,
        "password_storm": password_storm,
        "runs": {k: [asdict(r) for r in v] for k, v in runs.items()},
        "server_restarts": server_restarts,
    }
    checks = [r["pass"] for r in rows] + [s["pass"] for s in storm]
    if soak:
        checks.append(soak["pass"])
    if metrics_cost:
        checks.append(metrics_cost["pass"])
    if password_storm:
        checks.append(password_storm["pass"])
    if scale:
        checks += [v["pass"] for k, v in scale["verdicts"].items() if k.startswith("api:")]
        checks += [v["pass"] for k, v in scale.get("lists", {}).items() if k.startswith("api:")]
    report["all_targets_met"] = all(checks)
    return report


def write(cfg: Config, report: dict[str, Any]) -> str:
    """Write latest.json and latest.md into cfg.out; the Markdown is returned."""
    text = markdown(report)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (cfg.out / "latest.md").write_text(text + "\n")
    return text
