"""The machine under the run: its description, wrk, and what /proc says about processes."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from .config import PASSWORD
from .database import admin_url, scalar
from .runtime import log


def machine_description(database_url: str) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    with psycopg.connect(admin_url(database_url), autocommit=True) as conn:
        pg_version = scalar(conn, "SELECT version()")
        shared_buffers = scalar(conn, "SHOW shared_buffers")
    wrk_version = subprocess.run(
        ["wrk", "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.splitlines()[:1]
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "postgresql_shared_buffers": shared_buffers,
        "wrk": wrk_version[0].strip() if wrk_version else "unknown",
    }


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    log("wrk is missing: installing Debian's package (apt-get install wrk)")
    apt = ["apt-get"] if os.geteuid() == 0 else ["sudo", "-n", "apt-get"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*apt, "install", "-y", "-qq", "wrk"]
    if subprocess.run(install, env=env, timeout=600, check=False).returncode != 0:
        subprocess.run([*apt, "update", "-qq"], env=env, timeout=600, check=True)
        subprocess.run(install, env=env, timeout=600, check=True)
    if not shutil.which("wrk"):
        raise SystemExit("wrk could not be installed; install it (apt-get install wrk)")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of every process, with its name."""
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat.rsplit(")", 1)[1].split()
            found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return found


def foreign_cpu(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], ours: set[int]
) -> tuple[float, list[str]]:
    """CPU seconds spent between two snapshots by processes that are neither this benchmark's
    (harness, servers, wrk) nor PostgreSQL's: other people's work on a shared machine.
    Processes that both started and ended between the snapshots are not seen."""
    spent: dict[str, float] = {}
    for pid, (name, cpu) in after.items():
        if pid in ours or name.startswith("postgres"):
            continue
        earlier = before.get(pid)
        used = cpu - earlier[1] if earlier and earlier[0] == name else cpu
        if used > 0.05:
            spent[name] = spent.get(name, 0.0) + used
    top = sorted(spent.items(), key=lambda kv: -kv[1])[:3]
    return round(sum(spent.values()), 1), [f"{n} {c:.1f}s" for n, c in top]


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def time_one_hash(rounds: int) -> float:
    import bcrypt  # the venv has it; timing the server's own library at its cost

    salt = bcrypt.gensalt(rounds)
    samples: list[float] = []
    for _ in range(3):
        started = time.perf_counter()
        bcrypt.hashpw(PASSWORD.encode(), salt)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)
