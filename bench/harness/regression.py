"""Today's code against an earlier commit's: did a change make the service slower?

``bench/run.py --against REF`` (``make bench-against REF=...``): REF is a commit (checked out
into a temporary git worktree) or a directory holding a source tree. Four servers run on one
freshly seeded database at today's schema: today's API and baseline, and the earlier tree's
API and baseline (its ``src`` first on PYTHONPATH; its ``bench/baseline``). Each round runs a
scenario on today's pair and on the earlier pair (the order flips each round). The measure
is the bench's own: the API's requests per second over its baseline's. A scenario's change
is today's ratio over the earlier ratio, the median of the rounds; the target is
REGRESSION_TARGET (no ratio dropped by more than 3 %).

Why the baselines too: the baseline does the same work as the API (the main run checks
parity), and that work grew with the features (search keys and their counts kept on every
write, versions, revocation); the earlier API on today's schema skips the new work (it
writes no search keys, so no counts are kept for it), so comparing the two APIs alone would
charge the features' database work to the code. The API's overhead over bare driver code
doing the same work is what must not grow. Comparing two separate runs' ratios does not
answer it either: the same code moved by 5-10 % between two runs of one morning; side by
side, the machine's drift falls on all four.

The earlier code must understand today's schema and tokens: every migration since adds
columns with defaults and tables of its own, so it reads and writes the seeded data as it
did. Scenarios it lacks cannot be compared; the default list is the eight it has always
served, less the bcrypt-bound login. Parity is not required here (the earlier servers may
answer differently by design); every server must answer without errors.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import ROOT, VENV_BIN, Config, parse_args
from .database import hash_password, prepare_database
from .inprocess import SCENARIOS as DEFAULT_SCENARIOS
from .load import Load, Run, write_lua_data
from .machine import ensure_wrk, machine_description
from .runtime import CLEANUP, log
from .scenarios import RefreshPools, scenario_runs
from .servers import Server, login_many, start_api, start_baseline, start_orders, worker_pids

REGRESSION_TARGET = 0.97
REFERENCE = "reference"


def source_tree(ref: str) -> Path:
    """A directory with the earlier code: ``ref`` itself, or a worktree of the commit."""
    given = Path(ref)
    if (given / "src" / "healthcare").is_dir():
        return given.resolve()
    tree = CLEANUP.workdir / "reference"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), ref],
        check=True,
    )
    CLEANUP.on_exit(
        lambda: subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False
        )
    )
    return tree


Pair = tuple[Run, Run]  # an API's run and its baseline's, one round


def judge(today: dict[str, list[Pair]], earlier: dict[str, list[Pair]]) -> list[dict[str, Any]]:
    """Per scenario: each round's API ÷ baseline for today and for the earlier tree, and the
    median of the rounds' today ÷ earlier."""
    rows = []
    for scenario, now in today.items():
        then = earlier[scenario]
        new = [api.rps / base.rps if base.rps else 0.0 for api, base in now]
        old = [api.rps / base.rps if base.rps else 0.0 for api, base in then]
        changes = [a / b for a, b in zip(new, old, strict=True) if b]
        # The APIs alone, for a scenario whose baseline changed its own algorithm since.
        api_changes = [a.rps / b.rps for (a, _), (b, _) in zip(now, then, strict=True) if b.rps]
        change = statistics.median(changes) if changes else 0.0
        errors = sum(run.errors for pair in now + then for run in pair)
        rows.append(
            {
                "scenario": scenario,
                "api_rps": round(statistics.median(api.rps for api, _ in now), 1),
                "earlier_api_rps": round(statistics.median(api.rps for api, _ in then), 1),
                "ratio": round(statistics.median(new), 3),
                "earlier_ratio": round(statistics.median(old), 3),
                "change": round(change, 3),
                "round_changes": [round(x, 3) for x in changes],
                "api_change": round(statistics.median(api_changes), 3) if api_changes else 0.0,
                "errors": errors,
                "pass": change >= REGRESSION_TARGET and errors == 0,
            }
        )
    return rows


def markdown(ref: str, cfg: Config, rows: list[dict[str, Any]], elapsed: float) -> str:
    out = [
        "# Today's code against an earlier commit",
        "",
        f"Run {datetime.now(UTC).isoformat(timespec='seconds')} ({elapsed:.0f} s): "
        f"`bench/run.py --against {ref}`. Today's API and baseline and the earlier tree's, "
        f"served as the main run serves them ({cfg.workers} workers each), on one database "
        f"({cfg.sizes.patients} patients), {cfg.connections} connections, {cfg.rounds} "
        f"round(s) of {cfg.duration:g} s; ratios are API ÷ baseline rps, medians of the rounds.",
        "",
        "| Scenario | API rps today (earlier) | API today ÷ earlier | Ratio today "
        f"| Ratio earlier | Today ÷ earlier (rounds) | Errors | Pass (>= {REGRESSION_TARGET}) |",
        "|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        rounds = ", ".join(f"{x:.3f}" for x in r["round_changes"])
        out.append(
            f"| {r['scenario']} | {r['api_rps']:.0f} ({r['earlier_api_rps']:.0f}) "
            f"| {r['api_change']:.3f} | {r['ratio']:.3f} | {r['earlier_ratio']:.3f} "
            f"| {r['change']:.3f} ({rounds}) "
            f"| {r['errors']} | {'yes' if r['pass'] else 'no'} |"
        )
    return "\n".join(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--against", required=True)
    known, rest = parser.parse_known_args(argv)
    if not any(a.startswith("--scenarios") for a in rest):
        rest = ["--scenarios", ",".join(DEFAULT_SCENARIOS), *rest]
    cfg = parse_args(rest)
    started = time.monotonic()
    try:
        return _run(known.against, cfg, started)
    finally:
        CLEANUP.run()


def _run(ref: str, cfg: Config, started: float) -> int:
    CLEANUP.keep_db = cfg.keep_db
    ensure_wrk()
    tree = source_tree(ref)
    machine = machine_description(cfg.database_url)
    log(f"today's code against {ref} ({tree}) on {machine['nproc']} cores")
    secret = secrets.token_urlsafe(48)
    url = cfg.database_url
    prepare_database(cfg, url, cfg.sizes, hash_password(cfg.bcrypt_rounds))
    _require_earlier_code(tree)
    earlier_env = {"PYTHONPATH": str(tree / "src")}
    earlier_baseline_dir = tree / "bench" / "baseline"
    today: dict[str, list[Pair]] = {s: [] for s in cfg.scenarios}
    earlier: dict[str, list[Pair]] = {s: [] for s in cfg.scenarios}
    one_round = replace(cfg, rounds=1)
    load: Load | None = None
    for today_first, rounds in start_orders(cfg.rounds):  # each side first for half the rounds
        servers: dict[str, Server] = {}
        for side in ("today", "earlier") if today_first else ("earlier", "today"):
            if side == "today":
                servers["api"] = start_api(cfg, url, secret)
                servers["baseline"] = start_baseline(cfg, url, secret)
            else:
                servers[REFERENCE] = start_api(cfg, url, secret, REFERENCE, earlier_env)
                servers[REFERENCE + "-baseline"] = start_baseline(
                    cfg, url, secret, REFERENCE + "-baseline", earlier_baseline_dir
                )
        api = servers["api"]
        log(
            f"{'today' if today_first else 'earlier'}'s servers started first "
            f"(api workers {worker_pids(api)})"
        )
        users = list(range(1, cfg.sizes.users + 1))
        tokens = {u: p["access"] for u, p in zip(users, login_many(api, users), strict=True)}
        data_file = CLEANUP.workdir / "data.lua"
        write_lua_data(data_file, cfg.sizes, cfg.sizes.patients, tokens)
        minter = RefreshPools(cfg, api, cfg.sizes)
        # One Load for the whole run, so its pair sequence goes on: a mapping made before the
        # restart would be a duplicate (409) if the next set started the sequence again.
        if load is None:
            load = Load(cfg, data_file)
        load.data_file = data_file
        for index in range(rounds):
            sides = [
                (today, api, servers["baseline"]),
                (earlier, servers[REFERENCE], servers[REFERENCE + "-baseline"]),
            ]
            for pairs, side_api, side_baseline in sides if index % 2 == 0 else sides[::-1]:
                runs = scenario_runs(one_round, load, side_api, side_baseline, minter)
                for scenario, (api_run, baseline_run) in runs.items():
                    pairs[scenario].append((api_run, baseline_run))
        for server in servers.values():
            CLEANUP.stop(server.process)
    rows = judge(today, earlier)
    text = markdown(ref, cfg, rows, time.monotonic() - started)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "regression.md").write_text(text + "\n")
    (cfg.out / "regression.json").write_text(
        json.dumps({"against": ref, "scenarios": rows}, indent=2) + "\n"
    )
    print(text)
    return 0 if all(r["pass"] for r in rows) else 1


def _require_earlier_code(tree: Path) -> None:
    """With the earlier tree first on PYTHONPATH, ``healthcare`` must be imported from it, not
    from this checkout (installed in the virtual environment as an editable package)."""
    found = subprocess.run(
        [str(VENV_BIN / "python"), "-c", "import healthcare; print(healthcare.__file__)"],
        env={**os.environ, "PYTHONPATH": str(tree / "src")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(found).is_relative_to(tree):
        raise SystemExit(f"the earlier API would run {found}, not the code in {tree}")
    log(f"the earlier API runs {found}")
