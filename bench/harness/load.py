"""The load: wrk runs of bench/lua/scenario.lua against one server, and what a round measured."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

from .config import LUA, PASSWORD, USERNAME, Config, Sizes
from .database import SEARCH_FRAGMENTS, db_sessions
from .machine import cpu_by_process, descendants, foreign_cpu
from .runtime import CLEANUP, log
from .servers import Server, memory


class WrkOptions(TypedDict, total=False):
    """The options of one wrk run that the phases set (Load.wrk's keywords)."""

    connections: int
    timeout_s: float
    extra_env: dict[str, str]


@dataclass
class Run:
    scenario: str
    target: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_detail: dict[str, int]
    memory_start_mib: float
    memory_end_mib: float
    db_sessions_opened: int = 0  # -1: could not be read
    mean_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def in_flight(self) -> float:
        """Requests outstanding on average (Little's law: throughput x mean latency)."""
        return self.rps * self.mean_ms / 1000


class Load:
    """Runs wrk against one server with scenario.lua and the run's data file."""

    def __init__(self, cfg: Config, data_file: Path) -> None:
        self.cfg = cfg
        self.data_file = data_file
        self.mapping_base = 0  # next unused number in create_mapping's pair sequence
        self.stop_files = 0

    def wrk(
        self,
        server: Server,
        scenario: str,
        duration: float,
        *,
        connections: int | None = None,
        timeout_s: float = 10.0,
        extra_env: dict[str, str] | None = None,
        data_file: Path | None = None,
        retry: bool = True,
    ) -> dict[str, Any]:
        server.ensure_alive()
        connections = connections or self.cfg.connections
        threads = min(self.cfg.threads, connections)
        env = {
            **os.environ,
            "BENCH_SCENARIO": scenario,
            "BENCH_DATA": str(data_file or self.data_file),
            "BENCH_THREADS": str(threads),
            "BENCH_BASE": str(self.mapping_base),
            **(extra_env or {}),
        }
        cmd = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(duration, 1):.0f}s",
            f"--timeout={timeout_s:.0f}s",
            "-s",
            str(LUA),
            server.base,
        ]
        stop_file = None
        if "BENCH_STOP_AFTER" in env:
            self.stop_files += 1
            stop_file = CLEANUP.workdir / f"stop-{self.stop_files}"
            env["BENCH_STOP_FILE"] = str(stop_file)
        process = CLEANUP.spawn(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + duration + timeout_s + 60
        if stop_file is not None:
            # Every thread stopped after its share of requests: wrk would still sleep out
            # its -d, so interrupt it (SIGINT makes wrk report and exit).
            while process.poll() is None and time.monotonic() < deadline:
                done = list(CLEANUP.workdir.glob(stop_file.name + ".*"))
                if len(done) >= threads:
                    process.send_signal(signal.SIGINT)
                    break
                time.sleep(0.1)
        try:
            out, err = process.communicate(timeout=max(deadline - time.monotonic(), 5))
        except subprocess.TimeoutExpired:
            CLEANUP.stop(process)
            raise SystemExit(f"wrk {scenario} on {server.name} did not finish in time") from None
        CLEANUP.stop(process)
        text = out.decode(errors="replace")
        match = re.search(r"^BENCH_JSON (.*)$", text, re.MULTILINE)
        if (process.returncode != 0 or match is None) and retry and server.ensure_alive():
            return self.wrk(
                server,
                scenario,
                duration,
                connections=connections,
                timeout_s=timeout_s,
                extra_env=extra_env,
                data_file=data_file,
                retry=False,
            )
        if process.returncode != 0 or match is None:
            tail = server.log_path.read_text(errors="replace")[-4000:]
            raise SystemExit(
                f"wrk {scenario} on {server.name} failed ({process.returncode}):\n"
                f"{text}\n{err.decode(errors='replace')}\n"
                f"--- {server.name} log (tail) ---\n{tail}"
            )
        result: dict[str, Any] = json.loads(match.group(1))
        if scenario in ("create_mapping", "mixed"):
            # The next run starts past every pair number this one may have used.
            self.mapping_base += threads * (result["max_thread_counter"] + 2)
        return result

    def measure(
        self, server: Server, scenario: str, duration: float, **kwargs: Unpack[WrkOptions]
    ) -> Run:
        connections = kwargs.get("connections") or self.cfg.connections
        load_before = os.getloadavg()[0]
        cpu_before = cpu_by_process()
        before = memory(server)["total_mib"]
        sessions_before = db_sessions(server.database_url)
        r = self.wrk(server, scenario, duration, **kwargs)
        ours = {os.getpid(), *descendants(os.getpid())}
        other_cpu, other_top = foreign_cpu(cpu_before, cpu_by_process(), ours)
        after = memory(server)["total_mib"]
        # PostgreSQL sessions opened during the run, less the one that asks: a pool that
        # keeps its connections opens none once warm.
        sessions_after = db_sessions(server.database_url)
        opened = (
            sessions_after - sessions_before - 1
            if sessions_after is not None and sessions_before is not None
            else -1
        )
        seconds = r["duration_us"] / 1e6
        lat = r["latency_us"]
        errors = sum(r["errors"].values())
        run = Run(
            scenario,
            server.name,
            connections,
            round(seconds, 2),
            r["requests"],
            round(r["requests"] / seconds, 1) if seconds else 0.0,
            lat["p50"] / 1000,
            lat["p90"] / 1000,
            lat["p99"] / 1000,
            lat["max"] / 1000,
            errors,
            r["errors"],
            before,
            after,
            opened,
            mean_ms=lat["mean"] / 1000,
        )
        # The machine's 1-minute load average as the run began: a value well above the
        # cores in use by this benchmark means someone else was busy too.
        run.extra["loadavg_before"] = round(load_before, 2)
        # CPU seconds that other people's processes used during the round (see foreign_cpu).
        run.extra["foreign_cpu_s"] = other_cpu
        if other_top:
            run.extra["foreign_top"] = other_top
        if r.get("refresh_pool_ran_dry"):
            run.extra["refresh_pool_ran_dry"] = r["refresh_pool_ran_dry"]
        log(
            f"  {server.name:>8} {scenario:<16} {run.rps:>8.1f} rps  p50 {run.p50_ms:6.1f} ms"
            f"  p99 {run.p99_ms:6.1f} ms  in flight {run.in_flight:4.1f}"
            f"  errors {errors}  mem {after:.0f} MiB"
            f"  db connects {run.db_sessions_opened}"
            + (f"  (outside CPU {other_cpu:.1f}s)" if other_cpu >= 1 else "")
        )
        return run


def write_lua_data(path: Path, sizes: Sizes, patients: int, tokens: dict[int, str]) -> None:
    lines = [
        "return {",
        f"  users = {sizes.users}, patients = {patients}, doctors = {sizes.doctors},",
        f'  password = "{PASSWORD}",',
        "  fragments = {" + ", ".join(f'"{f}"' for f in SEARCH_FRAGMENTS) + "},",
        "  usernames = {"
        + ", ".join(f'"{USERNAME.format(u)}"' for u in range(1, sizes.users + 1))
        + "},",
        "  access = {",
    ]
    lines += [f'    "Bearer {tokens[u]}",' for u in range(1, sizes.users + 1)]
    lines += ["  },", "}"]
    path.write_text("\n".join(lines) + "\n")


def write_refresh_pools(path: Path, pools: list[list[str]]) -> None:
    body = ",\n".join("  {" + ", ".join(f'"{t}"' for t in pool) + "}" for pool in pools)
    path.write_text("return {\n" + body + "\n}\n")


def ms(value: float) -> float:
    return round(value, 2)
