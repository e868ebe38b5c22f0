"""Today's API against the API of an earlier commit: did a change make the service slower?

``bench/run.py --against REF`` (``make bench-against REF=...``): REF is a commit (checked
out into a temporary git worktree) or a directory holding a source tree. Both APIs are
started as `make run` serves them (the earlier one with its ``src`` first on PYTHONPATH,
with this checkout's virtual environment) on the same freshly seeded database at today's
schema, and each scenario runs on one then the other, alternating, as the main run
alternates the API and the baseline. A ratio is today's requests per second over the
earlier API's; the target is REGRESSION_TARGET (no drop above 3 %).

Comparing two runs' ratios to the baseline across days does not answer this: the same code
moved by 5-10 % between two runs of one morning. Side by side, the machine's drift falls on
both.

The earlier code must understand today's schema and tokens: every migration since adds
columns with defaults and tables of its own, so an earlier API reads and writes the seeded
data as it did. Scenarios that the earlier API lacks cannot be compared; the default list is
the nine it has always served, less the bcrypt-bound login. Parity is not required (the APIs
may answer differently by design); each must answer the scenarios' requests without errors.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .config import ROOT, VENV_BIN, Config, parse_args
from .database import hash_password, prepare_database
from .load import Load, Run, ms, write_lua_data
from .machine import ensure_wrk, machine_description
from .runtime import CLEANUP, log
from .scenarios import RefreshPools, scenario_runs
from .servers import login_many, start_api, worker_pids

REGRESSION_TARGET = 0.97
DEFAULT_SCENARIOS = (
    "get_patient",
    "list_patients",
    "patient_mappings",
    "list_doctors",
    "create_patient",
    "update_patient",
    "create_mapping",
    "refresh",
)
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


def judge(runs: dict[str, list[Run]]) -> list[dict[str, Any]]:
    """Per scenario: the median of the rounds' today ÷ earlier throughput, and the verdict."""
    rows = []
    for scenario, items in runs.items():
        today = [r for r in items if r.target == "api"]
        earlier = [r for r in items if r.target == REFERENCE]
        ratios = [a.rps / b.rps for a, b in zip(today, earlier, strict=True) if b.rps]
        ratio = statistics.median(ratios) if ratios else 0.0
        errors = sum(r.errors for r in items)
        rows.append(
            {
                "scenario": scenario,
                "today_rps": round(statistics.median(r.rps for r in today), 1),
                "earlier_rps": round(statistics.median(r.rps for r in earlier), 1),
                "ratio": round(ratio, 3),
                "round_ratios": [round(x, 3) for x in ratios],
                "today_p99_ms": ms(statistics.median(r.p99_ms for r in today)),
                "earlier_p99_ms": ms(statistics.median(r.p99_ms for r in earlier)),
                "errors": errors,
                "pass": ratio >= REGRESSION_TARGET and errors == 0,
            }
        )
    return rows


def markdown(ref: str, cfg: Config, rows: list[dict[str, Any]], elapsed: float) -> str:
    out = [
        "# Today's API against an earlier commit",
        "",
        f"Run {datetime.now(UTC).isoformat(timespec='seconds')} ({elapsed:.0f} s): "
        f"`bench/run.py --against {ref}`. Both APIs served as `make run` serves them "
        f"({cfg.workers} workers each), same database ({cfg.sizes.patients} patients), "
        f"{cfg.connections} connections, {cfg.rounds} alternating round(s) of "
        f"{cfg.duration:g} s; medians.",
        "",
        "| Scenario | Today rps | Earlier rps | Today ÷ earlier (rounds) | Today / earlier p99 ms "
        f"| Errors | Pass (>= {REGRESSION_TARGET}) |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        rounds = ", ".join(f"{x:.3f}" for x in r["round_ratios"])
        out.append(
            f"| {r['scenario']} | {r['today_rps']:.0f} | {r['earlier_rps']:.0f} "
            f"| {r['ratio']:.3f} ({rounds}) | {r['today_p99_ms']:.1f} / {r['earlier_p99_ms']:.1f} "
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
    log(f"today's API against {ref} ({tree}) on {machine['nproc']} cores")
    secret = secrets.token_urlsafe(48)
    prepare_database(cfg, cfg.database_url, cfg.sizes, hash_password(cfg.bcrypt_rounds))
    _require_earlier_code(tree)
    api = start_api(cfg, cfg.database_url, secret)
    earlier = start_api(cfg, cfg.database_url, secret, REFERENCE, {"PYTHONPATH": str(tree / "src")})
    log(f"api on :{api.port} {worker_pids(api)}, earlier on :{earlier.port}")
    users = list(range(1, cfg.sizes.users + 1))
    tokens = {u: p["access"] for u, p in zip(users, login_many(api, users), strict=True)}
    data_file = CLEANUP.workdir / "data.lua"
    write_lua_data(data_file, cfg.sizes, cfg.sizes.patients, tokens)
    runs = scenario_runs(cfg, Load(cfg, data_file), api, earlier, RefreshPools(cfg, api, cfg.sizes))
    rows = judge(runs)
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
