"""`make soak`: minutes of mixed load at half the measured capacity, against PostgreSQL and
Redis, with /metrics scraped throughout; judged on errors, memory, p99 and the scrapes.

The sequence (bench/README.md, "The soak"):

1. a database of its own (BENCH_DATABASE_URL's name + ``_soak``), seeded as the bench seeds;
2. the API as `make run` serves it, with REDIS_URL (throttling counters in Redis) and a
   random METRICS_TOKEN;
3. capacity: the mixed scenario in a closed loop (wrk, every connection sending its next
   request as soon as the last is answered) for --capacity-seconds;
4. the soak: the same mix at a fixed rate of half that capacity (scenario.lua's BENCH_RATE,
   a schedule of evenly spaced slots per wrk thread), first --warmup-seconds unmeasured, then
   --minutes one-minute wrk runs, each reporting its own throughput, latencies and errors;
   worker RSS is read after the warm-up and after every minute, and /metrics is scraped every
   --scrape-seconds in a thread of its own from the first minute to the last;
5. bench/results/soak.json and soak.md, and exit status 1 when a criterion fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config import RESULTS, Config, parse_args
from .database import database_name, hash_password, prepare_database, with_database
from .load import Load, Run, write_lua_data
from .machine import ensure_wrk, machine_description
from .metrics_cost import metrics_requests
from .runtime import CLEANUP, log, on_signal
from .servers import Server, login_many, memory, start_api

SCENARIO = "mixed"
MINUTE = 60.0
RSS_GROWTH_LIMIT = 5.0  # percent, per worker, after the warm-up to the end
P99_DRIFT_LIMIT = 1.2  # the last minute's p99 over the second minute's
RATE_HELD = 0.9  # each minute must deliver this share of the target rate


def parse_soak_args(argv: list[str] | None) -> tuple[Config, argparse.Namespace]:
    env = os.environ
    parser = argparse.ArgumentParser(
        description="`make soak`: mixed load at half the measured capacity for --minutes, "
        "with /metrics scraped throughout (bench/README.md, 'The soak')."
    )
    parser.add_argument("--minutes", type=int, default=int(env.get("SOAK_MINUTES", 10)))
    parser.add_argument("--quick", action="store_true", help="the bench's small data set")
    parser.add_argument(
        "--capacity-seconds", type=float, default=10.0, help="closed-loop capacity run (10)"
    )
    parser.add_argument(
        "--warmup-seconds", type=float, default=30.0, help="unmeasured load at the rate (30)"
    )
    parser.add_argument("--scrape-seconds", type=float, default=5.0, help="/metrics period (5)")
    parser.add_argument("--connections", type=int, default=int(env.get("BENCH_CONNECTIONS", 64)))
    parser.add_argument(
        "--database-url",
        default=env.get(
            "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/healthcare_bench"
        ),
        help="server and name; the soak makes (and drops) the database NAME_soak",
    )
    parser.add_argument(
        "--redis-url",
        default=env.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the API's REDIS_URL (SOAK_REDIS_URL; default redis://127.0.0.1:6379/0)",
    )
    parser.add_argument("--reuse-db", action="store_true", help="reuse a seeded NAME_soak")
    parser.add_argument("--keep-db", action="store_true", help="do not drop NAME_soak")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where soak.{json,md} go")
    a = parser.parse_args(argv)
    if a.minutes < 1:
        parser.error("--minutes must be at least 1")
    url = a.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    url = with_database(url, database_name(url) + "_soak")
    bench_argv = ["--database-url", url, "--connections", str(a.connections), "--out", str(a.out)]
    bench_argv += ["--quick"] * a.quick + ["--reuse-db"] * a.reuse_db + ["--keep-db"] * a.keep_db
    return parse_args(bench_argv), a


def redis_answers(url: str) -> bool:
    """A PING to the Redis server of url (the API would otherwise fail on each request)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def scrape_ok(count: float | None, previous: float | None) -> bool:
    """A scrape answered (count is not None) and counted more requests than the last one
    that answered (the first needs only to answer)."""
    return count is not None and (previous is None or count > previous)


class Scraper:
    """Scrapes /metrics every period seconds until stopped; each scrape must answer 200 and
    show more requests counted than the one before."""

    def __init__(self, server: Server, token: str, period: float) -> None:
        self.server, self.token, self.period = server, token, period
        self.scrapes: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = 0.0

    def start(self) -> None:
        self.t0 = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        previous: float | None = None
        while not self._stop.wait(self.period):
            count: float | None = None
            with contextlib.suppress(OSError):
                count = metrics_requests(self.server, self.token)
            grew = scrape_ok(count, previous)
            self.scrapes.append(
                {"t": round(time.monotonic() - self.t0, 1), "requests": count, "ok": grew}
            )
            previous = count if count is not None else previous


def minute_row(
    index: int, run: Run, workers_mib: list[float], scrapes: list[Any]
) -> dict[str, Any]:
    return {
        "minute": index,
        "requests": run.requests,
        "rps": run.rps,
        "p50_ms": round(run.p50_ms, 2),
        "p90_ms": round(run.p90_ms, 2),
        "p99_ms": round(run.p99_ms, 2),
        "max_ms": round(run.max_ms, 2),
        "errors": run.errors,
        "error_detail": run.error_detail,
        "workers_mib": workers_mib,
        "scrapes": len(scrapes),
        "scrapes_ok": sum(1 for s in scrapes if s["ok"]),
        "loadavg_before": run.extra.get("loadavg_before"),
        "foreign_cpu_s": run.extra.get("foreign_cpu_s"),
    }


def judge(
    minutes: list[dict[str, Any]],
    start: dict[str, Any],
    end: dict[str, Any],
    scrapes: list[dict[str, Any]],
    rate: float,
    warmup_errors: int,
) -> tuple[dict[str, bool], dict[str, Any]]:
    """The criteria (bench/README.md, "The soak") and the figures they were judged on."""
    growth = [
        round((end["workers_mib"][end["pids"].index(pid)] / before - 1) * 100, 1)
        if pid in end["pids"] and before
        else 100.0
        for pid, before in zip(start["pids"], start["workers_mib"], strict=True)
    ]
    reference = minutes[1] if len(minutes) > 1 else minutes[0]
    drift = minutes[-1]["p99_ms"] / reference["p99_ms"] if reference["p99_ms"] else 0.0
    errors = warmup_errors + sum(m["errors"] for m in minutes)
    checks = {
        "zero_errors": errors == 0,
        "rate_held": all(m["rps"] >= RATE_HELD * rate for m in minutes),
        "flat_memory": bool(growth)
        and all(g < RSS_GROWTH_LIMIT for g in growth)
        and start["pids"] == end["pids"],
        "stable_p99": 0 < drift <= P99_DRIFT_LIMIT,
        "metrics_scraped": bool(scrapes) and all(s["ok"] for s in scrapes),
    }
    figures = {
        "errors": errors,
        "rss_growth_percent": growth,
        "same_workers": start["pids"] == end["pids"],
        "p99_last_over_second": round(drift, 3),
        "scrapes": len(scrapes),
        "scrapes_failed": [s for s in scrapes if not s["ok"]],
    }
    return checks, figures


def markdown(doc: dict[str, Any]) -> str:
    c, f = doc["config"], doc["figures"]
    out = [
        "# Soak",
        "",
        f"Run {doc['finished_at']} ({doc['elapsed_s']:.0f} s). Reproduce with `make soak` "
        "(see [bench/README.md](../README.md), 'The soak'). Machine: "
        f"{doc['machine']['nproc']} cores, {doc['machine']['postgresql'].split(',')[0]}, "
        f"{doc['machine']['wrk']}.",
        "",
        f"Capacity (mixed, closed loop, {c['connections']} connections, "
        f"{c['capacity_seconds']:.0f} s): {doc['capacity_rps']:.0f} rps. Soak: the same mix at "
        f"{doc['rate_rps']:.0f} rps (half), {c['minutes']} minute(s) after "
        f"{c['warmup_seconds']:.0f} s of warm-up; API with PostgreSQL, REDIS_URL and "
        f"METRICS_TOKEN, {c['workers']} workers; /metrics scraped every "
        f"{c['scrape_seconds']:.0f} s.",
        "",
        "| Minute | Requests | rps | p50 ms | p99 ms | max ms | Errors | Worker RSS MiB "
        "| Scrapes ok |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in doc["minutes"]:
        out.append(
            f"| {m['minute']} | {m['requests']} | {m['rps']:.0f} | {m['p50_ms']:.1f} "
            f"| {m['p99_ms']:.1f} | {m['max_ms']:.0f} | {m['errors']} "
            f"| {', '.join(format(w, '.0f') for w in m['workers_mib'])} "
            f"| {m['scrapes_ok']}/{m['scrapes']} |"
        )
    verdict = {True: "yes", False: "**no**"}
    ch = doc["checks"]
    out += [
        "",
        f"Worker RSS after warm-up: {', '.join(format(w, '.1f') for w in doc['rss_start_mib'])} "
        f"MiB.",
        "",
        "| Criterion | Figure | Pass |",
        "|---|---|:---:|",
        f"| Zero errors (warm-up included) | {f['errors']} | {verdict[ch['zero_errors']]} |",
        f"| Rate held (each minute ≥ {RATE_HELD:.0%} of the target) | "
        f"{min(m['rps'] for m in doc['minutes']):.0f} rps at the least "
        f"| {verdict[ch['rate_held']]} |",
        f"| Flat memory (each worker < {RSS_GROWTH_LIMIT:.0f} % after warm-up, same workers) "
        f"| {f['rss_growth_percent']} % | {verdict[ch['flat_memory']]} |",
        f"| Stable p99 (last minute ≤ {P99_DRIFT_LIMIT}× the second) "
        f"| {f['p99_last_over_second']:.2f}× | {verdict[ch['stable_p99']]} |",
        f"| /metrics every {c['scrape_seconds']:.0f} s: 200 and counters growing "
        f"| {f['scrapes'] - len(f['scrapes_failed'])}/{f['scrapes']} "
        f"| {verdict[ch['metrics_scraped']]} |",
        "",
        f"All criteria met: {verdict[doc['pass']]}.",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    cfg, a = parse_soak_args(argv)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    CLEANUP.keep_db = cfg.keep_db
    try:
        return _soak(cfg, a)
    finally:
        CLEANUP.run()


def _soak(cfg: Config, a: argparse.Namespace) -> int:
    started, started_at = time.monotonic(), datetime.now(UTC)
    if not redis_answers(a.redis_url):
        log(f"no Redis answers at {a.redis_url} (--redis-url or SOAK_REDIS_URL)")
        return 2
    ensure_wrk()
    machine = machine_description(cfg.database_url)
    password_hash = hash_password(cfg.bcrypt_rounds)
    prepare_database(cfg, cfg.database_url, cfg.sizes, password_hash)
    token = secrets.token_urlsafe(24)
    cfg = replace(cfg, api_env={**cfg.api_env, "METRICS_TOKEN": token, "REDIS_URL": a.redis_url})
    api = start_api(cfg, cfg.database_url, secrets.token_urlsafe(48))
    users = list(range(1, cfg.sizes.users + 1))
    tokens = {u: p["access"] for u, p in zip(users, login_many(api, users), strict=True)}
    data_file = CLEANUP.workdir / "data.lua"
    write_lua_data(data_file, cfg.sizes, cfg.sizes.patients, tokens)
    load = Load(cfg, data_file)

    log(f"capacity: {SCENARIO}, closed loop, {cfg.connections} connections")
    load.wrk(api, SCENARIO, 3)
    capacity = load.measure(api, SCENARIO, a.capacity_seconds)
    rate = capacity.rps / 2
    paced = {"BENCH_RATE": f"{rate:.1f}"}
    log(f"soak: {SCENARIO} at {rate:.0f} rps for {a.minutes} minute(s)")
    warm = load.wrk(api, SCENARIO, a.warmup_seconds, extra_env=paced)
    start = memory(api)
    scraper = Scraper(api, token, a.scrape_seconds)
    scraper.start()
    minutes: list[dict[str, Any]] = []
    try:
        for index in range(1, a.minutes + 1):
            began = time.monotonic() - scraper.t0
            run = load.measure(api, SCENARIO, MINUTE, extra_env=paced)
            ended = time.monotonic() - scraper.t0
            mine = [s for s in list(scraper.scrapes) if began <= s["t"] < ended]
            minutes.append(minute_row(index, run, memory(api)["workers_mib"], mine))
    finally:
        scraper.stop()
    end = memory(api)
    checks, figures = judge(
        minutes, start, end, scraper.scrapes, rate, sum(warm["errors"].values())
    )
    doc: dict[str, Any] = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - started, 1),
        "machine": machine,
        "config": {
            "minutes": a.minutes,
            "quick": cfg.quick,
            "sizes": {"users": cfg.sizes.users, "patients": cfg.sizes.patients},
            "connections": cfg.connections,
            "threads": cfg.threads,
            "workers": cfg.workers,
            "capacity_seconds": a.capacity_seconds,
            "warmup_seconds": a.warmup_seconds,
            "scrape_seconds": a.scrape_seconds,
            "database": database_name(cfg.database_url),
            "redis_url": a.redis_url,
        },
        "capacity_rps": capacity.rps,
        "capacity_p99_ms": round(capacity.p99_ms, 2),
        "rate_rps": round(rate, 1),
        "rss_start_mib": start["workers_mib"],
        "rss_end_mib": end["workers_mib"],
        "minutes": minutes,
        "checks": checks,
        "figures": figures,
        "scrapes": scraper.scrapes,
        "server_restarts": api.restarts,
        "pass": all(checks.values()),
    }
    text = markdown(doc)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "soak.json").write_text(json.dumps(doc, indent=2) + "\n")
    (cfg.out / "soak.md").write_text(text + "\n")
    print(text)
    failed = [name for name, ok in checks.items() if not ok]
    log(f"wrote {cfg.out / 'soak.md'}; " + (f"FAILED: {', '.join(failed)}" if failed else "pass"))
    return 1 if failed else 0
