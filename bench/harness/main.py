"""The run's sequence, phase by phase (bench/README.md, "What a run does")."""

from __future__ import annotations

import secrets
import signal
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from . import report
from .config import Config, parse_args
from .database import hash_password, prepare_database
from .load import Load, Run, write_lua_data
from .machine import ensure_wrk, machine_description, time_one_hash
from .metrics_cost import metrics_cost_check
from .parity import Answer, check_parity, require_parity
from .password_storm import password_storm_check
from .runtime import CLEANUP, log, on_signal
from .scale import scale_check
from .scenarios import RefreshPools, scenario_runs, summarize
from .servers import (
    Server,
    login,
    login_many,
    request,
    start_api,
    start_baseline,
    start_orders,
    worker_pids,
)
from .soak import soak
from .storm import storm_check


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    CLEANUP.keep_db = cfg.keep_db
    started, started_at = time.monotonic(), datetime.now(UTC)
    try:
        return _main(cfg, started, started_at)
    finally:
        CLEANUP.run()


class _Fetch:
    """parity.Fetch for one server."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def __call__(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> Answer:
        return request(self.server, method, path, body, token)


def _main(cfg: Config, started: float, started_at: datetime) -> int:
    ensure_wrk()
    machine = machine_description(cfg.database_url)
    log(
        f"{'quick' if cfg.quick else 'full'} run on {machine['nproc']} cores, "
        f"{machine['postgresql'].split(',')[0]}"
    )
    hash_seconds = time_one_hash(cfg.bcrypt_rounds)
    log(f"one bcrypt hash at cost {cfg.bcrypt_rounds}: {hash_seconds * 1000:.0f} ms")
    password_hash = hash_password(cfg.bcrypt_rounds)
    secret = secrets.token_urlsafe(48)
    sizes = cfg.sizes

    prepare_database(cfg, cfg.database_url, sizes, password_hash)
    api = start_api(cfg, cfg.database_url, secret)
    baseline = start_baseline(cfg, cfg.database_url, secret)
    log(
        f"api on :{api.port} (workers {worker_pids(api)}), "
        f"baseline on :{baseline.port} (workers {worker_pids(baseline)})"
    )

    log(f"signing in {sizes.users} users through the API")
    users = list(range(1, sizes.users + 1))
    pairs = login_many(api, users)
    tokens = {u: p["access"] for u, p in zip(users, pairs, strict=True)}
    data_file = CLEANUP.workdir / "data.lua"
    write_lua_data(data_file, sizes, sizes.patients, tokens)
    # Before any timed round: a mismatch would make every ratio compare different work, so
    # the run stops here (exit status 1, each mismatch named) rather than 30 minutes later.
    parity = check_parity(
        _Fetch(api),
        _Fetch(baseline),
        token=tokens[1],
        patient=1,
        api_login=pairs[0],
        baseline_login=login(baseline, 1),
    )
    for mismatch in parity.mismatches:
        log(f"parity: {mismatch}")
    require_parity(parity.mismatches)
    log(f"parity: both servers answered {len(parity.records)} checks alike")

    load = Load(cfg, data_file)
    minter = RefreshPools(cfg, api, sizes)
    runs: dict[str, list[Run]] = {}
    restarts: list[str] = []
    for api_first, rounds in start_orders(cfg.rounds):
        if not api_first:
            # The other half of the rounds with the baseline started first (start_orders).
            restarts += api.restarts + baseline.restarts
            CLEANUP.stop(api.process)
            CLEANUP.stop(baseline.process)
            baseline = start_baseline(cfg, cfg.database_url, secret)
            api = start_api(cfg, cfg.database_url, secret)
            minter.api = api
            log(f"started again, the baseline first: api :{api.port}, baseline :{baseline.port}")
        half = scenario_runs(replace(cfg, rounds=rounds), load, api, baseline, minter)
        for scenario, measured in half.items():
            runs.setdefault(scenario, []).extend(measured)
    rows = summarize(cfg, runs, hash_seconds)

    storm: list[dict[str, Any]] = []
    if cfg.storm:
        for server in (api, baseline):
            log(f"login storm vs reads on {server.name}")
            storm.append(storm_check(cfg, load, server))
    soak_result = soak(cfg, load, api) if cfg.soak else None
    CLEANUP.stop(api.process)
    CLEANUP.stop(baseline.process)
    metrics_cost = metrics_cost_check(cfg, load, secret) if cfg.metrics_cost else None
    password_storm = (
        password_storm_check(cfg, load, secret, hash_seconds) if cfg.password_storm else None
    )
    scale = scale_check(cfg, secret, password_hash, tokens) if cfg.scale else None

    document = report.build(
        cfg,
        started=started,
        started_at=started_at,
        machine=machine,
        hash_seconds=hash_seconds,
        parity=parity,
        rows=rows,
        runs=runs,
        storm=storm,
        soak=soak_result,
        scale=scale,
        metrics_cost=metrics_cost,
        password_storm=password_storm,
        server_restarts=restarts
        + api.restarts
        + baseline.restarts
        + (scale or {}).get("restarts", []),
    )
    text = report.write(cfg, document)
    log(
        f"wrote {cfg.out / 'latest.md'} and latest.json in {document['elapsed_s']:.0f}s; "
        f"all targets met: {document['all_targets_met']}"
    )
    print(text)
    return 0
