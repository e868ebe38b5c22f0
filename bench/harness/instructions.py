"""Instructions per request, today's tree against an earlier one's: the deterministic view.

``bench/run.py --instructions REF`` (``make bench-instructions REF=...``). Throughput on this
machine moves by 5-15 % between rounds of the same code, too much to show a 3 % bound; the
instructions a request executes do not move with the machine's load. For each scenario, each
tree in turn runs inprocess.py under ``valgrind --tool=callgrind`` on a fresh database
migrated to today's head (a few thousand instructions of noise remain: the event loop's
turns depend on when PostgreSQL answers). PostgreSQL's own work is not counted, nor the
kernel's: a change there needs the wall-clock bench. Writes a markdown table (medians of
the runs) to instructions.md and instructions.json under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from .config import BENCH, ROOT, VENV_BIN
from .database import admin_url, database_name, drop_database, migrate, recreate_database
from .inprocess import SCENARIOS as DEFAULT_SCENARIOS
from .regression import source_tree
from .runtime import CLEANUP, log

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/healthcare_instructions"
CHILD = BENCH / "harness" / "inprocess.py"
_TOTALS = re.compile(r"^\s*([\d,]+)\s+\(100\.0+%\)\s+PROGRAM TOTALS", re.MULTILINE)
# As the bench serves them (servers.py), so the same work is counted: refresh with rotation.
_SERVER_ENV = {
    "SECRET_KEY": "instructions-signing-key-of-at-least-32-bytes",
    "BCRYPT_ROUNDS": "4",  # only the set-up's sign-in hashes; no scenario here does
    "AUTH_REQUESTS_PER_MINUTE": "1000000000",
    "REFRESH_TOKEN_ROTATION": "on",
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py --instructions")
    parser.add_argument("--instructions", required=True, metavar="REF")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(DEFAULT_SCENARIOS))
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    a = parser.parse_args(argv)
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install valgrind)")
    try:
        return _run(
            a.instructions, a.scenarios.split(","), a.requests, a.runs, a.database_url, a.out
        )
    finally:
        CLEANUP.run()


def _run(ref: str, scenarios: list[str], requests: int, runs: int, url: str, out: Path) -> int:
    unknown = set(scenarios) - set(DEFAULT_SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(sorted(unknown))}")
    trees = {"today": ROOT, "earlier": source_tree(ref)}
    CLEANUP.databases.append(
        (database_name(url), partial(drop_database, admin_url(url), database_name(url)))
    )
    counts: dict[str, dict[str, list[int]]] = {s: {side: [] for side in trees} for s in scenarios}
    for scenario in scenarios:
        for run in range(runs):
            for side, tree in trees.items():  # interleaved: a drift of the set-up falls on both
                count = _count(tree, scenario, requests, url)
                counts[scenario][side].append(count)
                log(f"{scenario} run {run + 1} {side}: {count:,} instructions per request")
    rows: list[dict[str, object]] = []
    for scenario, sides in counts.items():
        today, earlier = (
            statistics.median_low(sides["today"]),
            statistics.median_low(sides["earlier"]),
        )
        rows.append(
            {
                "scenario": scenario,
                "today": today,
                "earlier": earlier,
                "change": round(today / earlier, 4),
                "runs": sides,
            }
        )
    text = _markdown(ref, requests, runs, rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / "instructions.md").write_text(text + "\n")
    (out / "instructions.json").write_text(
        json.dumps({"against": ref, "scenarios": rows}, indent=2) + "\n"
    )
    print(text)
    return 0


def _count(tree: Path, scenario: str, requests: int, url: str) -> int:
    """Instructions per request of ``scenario`` on ``tree``, on a fresh database."""
    recreate_database(url)  # (dropped once, at the end: registered by _run)
    database_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    migrate(database_url)
    output = CLEANUP.workdir / f"callgrind.{scenario}.out"
    env = {
        **os.environ,
        **_SERVER_ENV,
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(tree / "src"),
        "CALLGRIND": "1",
    }
    command = [
        "valgrind",
        "--tool=callgrind",
        "--quiet",  # (its summary would bury what the child said on stderr)
        "--instr-atstart=no",
        f"--callgrind-out-file={output}",
        str(VENV_BIN / "python"),
        str(CHILD),
        scenario,
        str(requests),
    ]
    # The access log goes to stderr, as a server's does (and is counted, as it is there);
    # so does the child's own complaint, last, when it fails.
    child = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if child.returncode != 0:
        raise SystemExit(f"{scenario} on {tree} failed:\n{child.stderr[-800:]}")
    annotated = subprocess.run(
        ["callgrind_annotate", str(output)], capture_output=True, text=True, check=True
    ).stdout
    found = _TOTALS.search(annotated)
    if found is None:
        raise SystemExit(f"no PROGRAM TOTALS in callgrind_annotate's output for {scenario}")
    return int(found[1].replace(",", "")) // requests


def _markdown(ref: str, requests: int, runs: int, rows: list[dict[str, object]]) -> str:
    when = datetime.now(UTC).isoformat(timespec="seconds")
    lines = [
        "# Instructions per request, today's code against an earlier commit",
        "",
        f"Run {when}: `bench/run.py --instructions {ref}`. The ASGI app called in process "
        f"(harness/inprocess.py) under callgrind, {requests} requests counted after 50 to warm "
        f"up, {runs} runs per tree, each on a fresh database at today's head; medians.",
        "",
        "| Scenario | Today | Earlier | Today ÷ earlier |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['scenario']} | {r['today']:,} | {r['earlier']:,} | {r['change']:.3f} |" for r in rows
    ]
    return "\n".join(lines)
