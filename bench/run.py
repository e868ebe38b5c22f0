"""The benchmark harness: `make bench` (full) or `.venv/bin/python bench/run.py --quick`.

What it does, in order (bench/README.md explains every number):

1. Makes a fresh PostgreSQL database (BENCH_DATABASE_URL), migrates it with
   `healthcare upgrade`, and seeds it with COPY: users (one bcrypt hash at the configured cost,
   reused by all), patients spread evenly over the users, doctors, and two mappings per patient.
2. Starts the API exactly as `make run` serves it (`.venv/bin/healthcare serve`: granian,
   uvloop, WORKERS=2) and the baseline (bench/baseline/app.py, bare Litestar + psycopg pool,
   granian with 2 workers) on the same database.
3. Signs every seeded user in through the API, checks that both servers answer the same
   requests with the same bodies, then drives each scenario with wrk (bench/lua/scenario.lua)
   from a separate process: API, baseline, API, baseline... and takes the median of rounds.
4. Login storm vs. reads, a 200,000-request memory soak, and the data-scale check (10,000 vs
   1,000,000 patient rows in a second database).
5. Writes bench/results/latest.json and bench/results/latest.md; stops every server it started
   and drops every database it created (unless --keep-db/--reuse-db).

Standard library plus psycopg (and bcrypt, to time one hash); run it with the project's venv.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import contextlib
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LUA = BENCH / "lua" / "scenario.lua"
VENV_BIN = ROOT / ".venv" / "bin"

PASSWORD = "bench-password-1"  # every seeded user's password
USERNAME = "bench_user_{:04d}"  # user i (1-based) is bench_user_0001...

READS = ("get_patient", "list_patients", "patient_mappings", "list_doctors")
WRITES = ("create_patient", "update_patient", "create_mapping", "refresh")
SCENARIOS = (*READS, *WRITES, "login")
TITLES = {
    "get_patient": "GET /api/patients/{id}/",
    "list_patients": "GET /api/patients/?limit=20",
    "patient_mappings": "GET /api/mappings/{patient_id}/",
    "list_doctors": "GET /api/doctors/ (default page: 100)",
    "create_patient": "POST /api/patients/",
    "update_patient": "PUT /api/patients/{id}/",
    "create_mapping": "POST /api/mappings/",
    "refresh": "POST /api/auth/token/refresh/",
    "login": "POST /api/auth/login/",
}
READ_TARGET, WRITE_TARGET, P99_TARGET_MS = 0.80, 0.70, 50.0
# The share of the connections that must have a request outstanding on average, for the
# latencies to count (see the in-flight check in summarize).
IN_FLIGHT_SHARE = 0.9
LOGIN_CONNECTIONS = 16  # bcrypt-bound: more connections only lengthen the queue
LOGIN_MIN_SECONDS = 10.0
STORM_READ_CONNECTIONS, STORM_READ_DELAY_MS = 16, 20
STORM_PAIRS = 3  # idle/storm window pairs, at most --rounds
STORM_SETTLE_SECONDS = 5.0

log_lock = threading.Lock()


def log(message: str) -> None:
    with log_lock:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- configuration ------------------------------------------------------------------------


@dataclass
class Sizes:
    users: int
    patients: int
    doctors: int
    mappings_per_patient: int = 2

    @property
    def mappings(self) -> int:
        return self.patients * self.mappings_per_patient


@dataclass
class Config:
    quick: bool
    sizes: Sizes
    scale_sizes: tuple[int, int]
    duration: float
    warmup: float
    rounds: int
    connections: int
    threads: int
    soak_requests: int
    workers: int
    bcrypt_rounds: int
    database_url: str
    reuse_db: bool
    keep_db: bool
    scenarios: tuple[str, ...]
    storm: bool
    soak: bool
    scale: bool
    out: Path
    api_env: dict[str, str] = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> Config:
    env = os.environ
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, short runs (smoke)")
    parser.add_argument(
        "--duration",
        type=float,
        default=env.get("BENCH_DURATION"),
        help="seconds per measured round (full 6, quick 3)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=env.get("BENCH_WARMUP"),
        help="seconds of warm-up before each round (1)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=env.get("BENCH_ROUNDS"),
        help="A/B rounds per scenario, median taken (full 5, quick 1)",
    )
    parser.add_argument("--connections", type=int, default=int(env.get("BENCH_CONNECTIONS", 64)))
    parser.add_argument("--threads", type=int, default=int(env.get("BENCH_THREADS", 2)))
    parser.add_argument(
        "--soak-requests",
        type=int,
        default=env.get("BENCH_SOAK_REQUESTS"),
        help="requests in the memory soak (full 200000, quick 20000)",
    )
    parser.add_argument(
        "--scenarios",
        default=env.get("BENCH_SCENARIOS", ",".join(SCENARIOS)),
        help="comma-separated subset of: " + ",".join(SCENARIOS),
    )
    parser.add_argument(
        "--database-url",
        default=env.get(
            "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/healthcare_bench"
        ),
        help="server and name of the database to create (dropped and made anew)",
    )
    parser.add_argument(
        "--reuse-db",
        action="store_true",
        help="reuse already seeded databases of the same sizes (reset to the "
        "seeded state) and keep them afterwards",
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the databases")
    parser.add_argument("--no-storm", action="store_true", help="skip the login-storm check")
    parser.add_argument("--no-soak", action="store_true", help="skip the memory soak")
    parser.add_argument("--no-scale", action="store_true", help="skip the data-scale check")
    parser.add_argument(
        "--api-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the API server only, for experiments "
        "(e.g. DB_POOL_SIZE=32); recorded in the results",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.{json,md} go")
    a = parser.parse_args(argv)
    quick = a.quick
    scenarios = tuple(s.strip() for s in a.scenarios.split(",") if s.strip())
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if a.connections < a.threads or a.threads < 1:
        parser.error("need at least one connection per thread")
    return Config(
        quick=quick,
        sizes=Sizes(20, 2_000, 100) if quick else Sizes(100, 100_000, 1_000),
        scale_sizes=(1_000, 10_000) if quick else (10_000, 1_000_000),
        duration=float(a.duration or (3 if quick else 6)),
        warmup=float(a.warmup if a.warmup is not None else 1),
        rounds=int(a.rounds or (1 if quick else 5)),
        connections=a.connections,
        threads=a.threads,
        soak_requests=int(a.soak_requests or (20_000 if quick else 200_000)),
        workers=int(env.get("WORKERS", 2)),
        bcrypt_rounds=int(env.get("BCRYPT_ROUNDS", 12)),
        database_url=a.database_url.replace("postgresql+psycopg://", "postgresql://", 1),
        reuse_db=a.reuse_db,
        keep_db=a.keep_db or a.reuse_db,
        scenarios=scenarios,
        storm=not a.no_storm,
        soak=not a.no_soak,
        scale=not a.no_scale,
        out=a.out,
        api_env=dict(item.split("=", 1) for item in a.api_env if "=" in item),
    )


# --- cleanup: every process and database this run makes is undone -------------------------


class Cleanup:
    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.databases: list[tuple[str, str]] = []  # (admin url, name)
        self.keep_db = False
        self.workdir = Path(tempfile.mkdtemp(prefix="healthcare-bench-"))

    def spawn(self, cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        # Own process group, so the whole tree (granian's workers) goes with one signal.
        process = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        self.processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        # Stragglers of the group (a worker whose parent died first).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if process in self.processes:
            self.processes.remove(process)

    def run(self) -> None:
        for process in list(self.processes):
            self.stop(process)
        if not self.keep_db:
            for admin_url, name in self.databases:
                try:
                    drop_database(admin_url, name)
                    log(f"dropped database {name}")
                except Exception as error:
                    log(f"could not drop {name}: {error}")
        shutil.rmtree(self.workdir, ignore_errors=True)


CLEANUP = Cleanup()


def _on_signal(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --- machine ------------------------------------------------------------------------------


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
        pg_version = conn.execute("SELECT version()").fetchone()[0]  # type: ignore[index]
        shared_buffers = conn.execute("SHOW shared_buffers").fetchone()[0]  # type: ignore[index]
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


# --- databases ----------------------------------------------------------------------------


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "healthcare_bench"


def admin_url(url: str) -> str:
    return with_database(url, "postgres")


def drop_database(url_of_admin: str, name: str) -> None:
    with psycopg.connect(url_of_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database(url: str) -> None:
    name = database_name(url)
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    CLEANUP.databases.append((admin_url(url), name))


def migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    result = subprocess.run(
        [str(VENV_BIN / "healthcare"), "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"healthcare upgrade failed:\n{result.stdout}\n{result.stderr}")


def seeded_counts(url: str) -> dict[str, int] | None:
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            return {
                t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                for t in ("user_account", "patient", "doctor", "patient_doctor")
            }
    except psycopg.Error:
        return None


# --- seeding with COPY --------------------------------------------------------------------

FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Frances",
    "Dennis",
    "Radia",
    "Niklaus",
    "Hedy",
    "Tim",
    "Shafi",
    "Leslie",
    "Sophie",
    "Guido",
    "Lynn",
    "Bjarne",
    "Annie",
    "John",
    "Mary",
    "Claude",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Allen",
    "Ritchie",
    "Perlman",
    "Wirth",
    "Lamarr",
    "Berners-Lee",
    "Goldwasser",
    "Lamport",
    "Wilson",
    "Rossum",
    "Conway",
    "Stroustrup",
    "Easley",
    "McCarthy",
    "Jackson",
    "Shannon",
]
STREETS = [
    "Oak Street",
    "Maple Avenue",
    "Elm Road",
    "Cedar Lane",
    "Pine Court",
    "Birch Way",
    "Willow Drive",
    "Ash Grove",
]
SPECIALTIES = [
    "Cardiology",
    "Dermatology",
    "Endocrinology",
    "Gastroenterology",
    "General Practice",
    "Neurology",
    "Oncology",
    "Ophthalmology",
    "Orthopaedics",
    "Paediatrics",
    "Psychiatry",
    "Radiology",
    "Rheumatology",
    "Urology",
]
GENDERS = ("Male", "Female", "Other", "Unknown")
NOTES = (
    "Allergic to penicillin.",
    "Follow-up in six weeks.",
    "Prefers morning visits.",
    "Type 2 diabetes, well controlled.",
    "Non-smoker.",
    "Hypertension; on medication.",
)


def identity_key(value: str) -> str:
    # The API's healthcare.domain.rules.identity_key (NFKC + casefold), for the seeded rows.
    return unicodedata.normalize("NFKC", value).casefold()


def _ts(i: int) -> str:
    return f"2025-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:00+00"


def _copy(
    conn: psycopg.Connection[Any],
    table: str,
    columns: str,
    rows: Iterator[str],
    chunk: int = 20_000,
) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer: list[str] = []
        for row in rows:
            buffer.append(row)
            if len(buffer) >= chunk:
                copy.write("".join(buffer))
                buffer.clear()
        if buffer:
            copy.write("".join(buffer))


def user_rows(users: int, password_hash: str) -> Iterator[str]:
    for i in range(1, users + 1):
        name = USERNAME.format(i)
        email = f"{name}@example.org"
        yield (
            f"{i}\t{name}\t{identity_key(name)}\t{email}\t{identity_key(email)}\t"
            f"{password_hash}\tt\tf\tf\t{_ts(i)}\t{_ts(i)}\n"
        )


def patient_rows(first_id: int, last_id: int, users: int) -> Iterator[str]:
    # Patient p belongs to user ((p - 1) % users) + 1: bench/lua/scenario.lua relies on it.
    for p in range(first_id, last_id + 1):
        name = f"{FIRST[p % len(FIRST)]} {LAST[(p * 7) % len(LAST)]}"
        phone = f"+1 555 {p % 10_000_000:07d}" if p % 5 else "\\N"
        email = f"patient{p}@example.org" if p % 3 else "\\N"
        address = f"{p % 997 + 1} {STREETS[p % len(STREETS)]}, Springfield" if p % 2 else "\\N"
        notes = NOTES[p % len(NOTES)] if p % 4 == 0 else "\\N"
        yield (
            f"{p}\t{((p - 1) % users) + 1}\t{name}\t{(p * 37) % 100}\t"
            f"{GENDERS[p % 4]}\t{phone}\t{email}\t{address}\t{notes}\t{_ts(p)}\t{_ts(p)}\n"
        )


def doctor_rows(doctors: int, users: int) -> Iterator[str]:
    for i in range(1, doctors + 1):
        name = f"Dr. {FIRST[(i * 5) % len(FIRST)]} {LAST[(i * 11) % len(LAST)]}"
        yield (
            f"{i}\t{(i % users) + 1}\t{name}\t{SPECIALTIES[i % len(SPECIALTIES)]}\t"
            f"doctor{i}@clinic.example.org\t+1 555 {i:07d}\t{_ts(i)}\t{_ts(i)}\n"
        )


def mapping_rows(patients: int, doctors: int, per_patient: int, users: int) -> Iterator[str]:
    # Patient p is mapped to doctors ((7p + j) % D) + 1 for j < per_patient; the benchmark's
    # new pairs use j >= per_patient (see create_mapping in scenario.lua). A mapping names
    # its patient's owner too.
    mapping_id = 0
    for p in range(1, patients + 1):
        owner = ((p - 1) % users) + 1
        for j in range(per_patient):
            mapping_id += 1
            doctor = ((p * 7 + j) % doctors) + 1
            yield f"{mapping_id}\t{owner}\t{p}\t{doctor}\t{_ts(p)}\t{_ts(p)}\n"


USER_COLUMNS = (
    "id, username, username_key, email, email_key, password_hash, is_active, "
    "is_staff, is_superuser, created_at, updated_at"
)
PATIENT_COLUMNS = (
    "id, created_by, name, age, gender, phone, email, address, notes, created_at, updated_at"
)
DOCTOR_COLUMNS = "id, created_by, name, specialization, email, phone, created_at, updated_at"
MAPPING_COLUMNS = "id, owner_id, patient_id, doctor_id, created_at, updated_at"


def reset_sequences_and_analyze(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("user_account", "patient", "doctor", "patient_doctor"):
            conn.execute(
                f"SELECT setval('{table}_id_seq', GREATEST((SELECT max(id) FROM {table}), 1))"
            )
        # VACUUM as well as ANALYZE: a long-lived database has its visibility map set by
        # autovacuum; a freshly copied one would otherwise read the heap for every count.
        conn.execute("VACUUM ANALYZE")
        # And CHECKPOINT: the copy and the vacuum leave hundreds of MB of WAL (490 MB for
        # the 1M-row growth), which the next timed checkpoint would write out during the
        # measurements that follow.
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            log("CHECKPOINT not allowed for this role: timed checkpoints may disturb rounds")


def seed(url: str, sizes: Sizes, password_hash: str, *, with_directory: bool = True) -> None:
    started = time.monotonic()
    with psycopg.connect(url) as conn:
        _copy(conn, "user_account", USER_COLUMNS, user_rows(sizes.users, password_hash))
        if with_directory:
            _copy(conn, "doctor", DOCTOR_COLUMNS, doctor_rows(sizes.doctors, sizes.users))
        _copy(conn, "patient", PATIENT_COLUMNS, patient_rows(1, sizes.patients, sizes.users))
        if with_directory:
            _copy(
                conn,
                "patient_doctor",
                MAPPING_COLUMNS,
                mapping_rows(
                    sizes.patients, sizes.doctors, sizes.mappings_per_patient, sizes.users
                ),
            )
        conn.commit()
    reset_sequences_and_analyze(url)
    log(
        f"seeded {sizes.users} users, {sizes.patients} patients"
        + (f", {sizes.doctors} doctors, {sizes.mappings} mappings" if with_directory else "")
        + f" in {time.monotonic() - started:.1f}s"
    )


def reset_to_seeded(url: str, sizes: Sizes) -> None:
    """--reuse-db: remove what earlier runs wrote, so pairs and ids start clean."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM refresh_session")
        conn.execute("DELETE FROM patient_doctor WHERE id > %s", (sizes.mappings,))
        conn.execute("DELETE FROM patient WHERE id > %s", (sizes.patients,))
    reset_sequences_and_analyze(url)


def prepare_database(
    cfg: Config, url: str, sizes: Sizes, password_hash: str, *, with_directory: bool = True
) -> None:
    expected = {
        "user_account": sizes.users,
        "patient": sizes.patients,
        "doctor": sizes.doctors if with_directory else 0,
        "patient_doctor": sizes.mappings if with_directory else 0,
    }
    if cfg.reuse_db:
        counts = seeded_counts(url)
        if (
            counts is not None
            and all(counts[t] >= n for t, n in expected.items())
            and counts["user_account"] == sizes.users
        ):
            log(f"reusing database {database_name(url)} (reset to the seeded state)")
            migrate(url)  # seeded by an older schema, perhaps
            reset_to_seeded(url, sizes)
            return
    log(f"creating database {database_name(url)}")
    create_database(url)
    migrate(url)
    seed(url, sizes, password_hash, with_directory=with_directory)


# --- servers ------------------------------------------------------------------------------


def db_sessions(url: str) -> int | None:
    """PostgreSQL's count of sessions ever opened to the database (pg_stat_database)."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
    except psycopg.Error as error:  # e.g. the server's connection slots are all taken
        log(f"could not read pg_stat_database: {str(error).strip()}")
        return None
    return int(row[0]) if row else None


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of every process, with its name."""
    found = {}
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    database_url: str
    restart: Callable[[], Server] | None = None
    restarts: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ensure_alive(self) -> bool:
        """Start the server again if it has stopped; True if it had to.

        Other people's work shares this machine; a server that something else stopped is
        restarted (and the event reported) rather than failing a long run.
        """
        if self.process.poll() is None or self.restart is None:
            return False
        tail = self.log_path.read_text(errors="replace")[-1500:]
        note = f"{self.name} had exited (code {self.process.returncode}); restarted"
        log(f"WARNING: {note}. Its log ends:\n{tail}")
        CLEANUP.stop(self.process)
        fresh = self.restart()
        self.port, self.process, self.log_path = fresh.port, fresh.process, fresh.log_path
        self.restarts.append(note)
        return True


def server_env(cfg: Config, url: str, port: int, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRANIAN_", "BENCH_"))}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        WORKERS=str(cfg.workers),
        DATABASE_URL=url,
        SECRET_KEY=secret,
        BCRYPT_ROUNDS=str(cfg.bcrypt_rounds),
        # A full run outlasts the default 15 minutes; tokens are minted once at the start.
        ACCESS_TOKEN_MINUTES="240",
        # All load comes from one address (127.0.0.1): the per-address budget for refresh
        # and registration (60 a minute by default) would make the refresh scenario a test
        # of the limiter. The limiter still runs on every request; it just never says no.
        AUTH_REQUESTS_PER_MINUTE="1000000000",
        # The refresh scenario measures rotation (a new refresh token signed and stored per
        # request), as the baseline does: the dearer of the two modes.
        REFRESH_TOKEN_ROTATION="on",
    )
    return env


def start_api(cfg: Config, url: str, secret: str, label: str = "api") -> Server:
    port = free_port()
    log_path = CLEANUP.workdir / f"{label}.log"
    with log_path.open("wb") as out:
        process = CLEANUP.spawn(
            [str(VENV_BIN / "healthcare"), "serve"],
            cwd=ROOT,
            env={**server_env(cfg, url, port, secret), **cfg.api_env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(
        label,
        port,
        process,
        log_path,
        url,
        restart=lambda: start_api(cfg, url, secret, label + "-restarted"),
    )
    wait_ready(server, "/ready", cfg.workers)
    return server


def start_baseline(cfg: Config, url: str, secret: str, label: str = "baseline") -> Server:
    port = free_port()
    log_path = CLEANUP.workdir / f"{label}.log"
    cmd = [
        str(VENV_BIN / "granian"),
        "--interface",
        "asgi",
        "--loop",
        "uvloop",
        "--workers",
        str(cfg.workers),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--working-dir",
        str(BENCH / "baseline"),
        "app:app",
    ]
    with log_path.open("wb") as out:
        process = CLEANUP.spawn(
            cmd,
            cwd=BENCH / "baseline",
            env=server_env(cfg, url, port, secret),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(
        label,
        port,
        process,
        log_path,
        url,
        restart=lambda: start_baseline(cfg, url, secret, label + "-restarted"),
    )
    wait_ready(server, "/health", cfg.workers)
    return server


def wait_ready(server: Server, path: str, workers: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        with contextlib.suppress(OSError, http.client.HTTPException):
            # Answering, and every worker process is up (not just the first to bind).
            if request(server, "GET", path)[0] == 200 and len(worker_pids(server)) >= workers:
                time.sleep(1.0)  # let the other workers finish their start-up
                return
        time.sleep(0.25)
    tail = server.log_path.read_text(errors="replace")[-3000:]
    raise SystemExit(f"{server.name} did not become ready on port {server.port}:\n{tail}")


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
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def worker_pids(server: Server) -> list[int]:
    """granian's worker processes: descendants of the server that are not helpers."""
    pids = []
    for pid in descendants(server.process.pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"resource_tracker" in cmdline or b"semaphore_tracker" in cmdline:
            continue
        pids.append(pid)
    return sorted(pids)


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory(server: Server) -> dict[str, Any]:
    per_worker = {pid: rss_kib(pid) for pid in worker_pids(server)}
    return {
        "total_mib": round(sum(per_worker.values()) / 1024, 1),
        "workers_mib": [round(v / 1024, 1) for v in per_worker.values()],
        "pids": list(per_worker),
    }


# --- HTTP from the harness (set-up and checks only; load comes from wrk) ------------------


def request(
    server: Server,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    timeout: float = 30.0,
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, None if body is None else json.dumps(body), headers)
        response = conn.getresponse()
        raw = response.read()
        headers_out = {k.lower(): v for k, v in response.getheaders()}
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return response.status, headers_out, payload
    finally:
        conn.close()


def login(server: Server, user: int) -> dict[str, Any]:
    status, _, body = request(
        server,
        "POST",
        "/api/auth/login/",
        {"username": USERNAME.format(user), "password": PASSWORD},
    )
    if status != 200:
        raise SystemExit(f"login of {USERNAME.format(user)} on {server.name}: {status} {body}")
    return body  # type: ignore[no-any-return]


def login_many(server: Server, users: list[int], parallel: int = 4) -> list[dict[str, Any]]:
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(lambda u: login(server, u), users))


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


def time_one_hash(rounds: int) -> float:
    import bcrypt  # the venv has it; timing the server's own library at its cost

    salt = bcrypt.gensalt(rounds)
    samples = []
    for _ in range(3):
        started = time.perf_counter()
        bcrypt.hashpw(PASSWORD.encode(), salt)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def hash_password(rounds: int) -> str:
    import bcrypt

    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds)).decode("ascii")


def parity_checks(api: Server, baseline: Server, token: str, patient: int) -> list[dict[str, Any]]:
    """The same request to both servers must give the same status, body and paging headers."""
    checks = []
    for method, path in (
        ("GET", f"/api/patients/{patient}/"),
        ("GET", "/api/patients/?limit=20"),
        ("GET", "/api/patients/?limit=20&offset=20"),
        ("GET", f"/api/mappings/{patient}/"),
        ("GET", "/api/doctors/"),
        ("GET", "/api/patients/999999999/"),
    ):
        a = request(api, method, path, token=token)
        b = request(baseline, method, path, token=token)
        same_body = a[2] == b[2] if a[0] < 400 else True
        same = (
            a[0] == b[0]
            and same_body
            and a[1].get("x-total-count") == b[1].get("x-total-count")
            and _link_rels(a[1]) == _link_rels(b[1])
        )
        checks.append(
            {
                "request": f"{method} {path}",
                "api_status": a[0],
                "baseline_status": b[0],
                "same": same,
            }
        )
        if not same:
            log(
                f"parity: {method} {path} differs: api {a[0]} {str(a[2])[:300]} | "
                f"baseline {b[0]} {str(b[2])[:300]}"
            )
    return checks


def _link_rels(headers: dict[str, str]) -> list[str]:
    return re.findall(r'rel="(\w+)"', headers.get("link", ""))


# --- wrk ----------------------------------------------------------------------------------


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
                done = [p for p in CLEANUP.workdir.glob(stop_file.name + ".*")]
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

    def measure(self, server: Server, scenario: str, duration: float, **kwargs: Any) -> Run:
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


# --- phases -------------------------------------------------------------------------------


def ms(value: float) -> float:
    return round(value, 2)


def scenario_runs(
    cfg: Config, load: Load, api: Server, baseline: Server, minter: Callable[[], Path]
) -> dict[str, list[Run]]:
    runs: dict[str, list[Run]] = {}
    for scenario in cfg.scenarios:
        log(f"scenario {scenario} ({TITLES[scenario]}): {cfg.rounds} round(s), A/B")
        runs[scenario] = []
        for _ in range(cfg.rounds):
            for server in (api, baseline):
                kwargs: dict[str, Any] = {}
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


def summarize(cfg: Config, runs: dict[str, list[Run]], hash_seconds: float) -> list[dict[str, Any]]:
    rows = []
    cores = os.cpu_count() or 1
    for scenario, items in runs.items():
        api = [r for r in items if r.target == "api"]
        base = [r for r in items if r.target == "baseline"]
        ratios = [a.rps / b.rps for a, b in zip(api, base, strict=True) if b.rps]
        ratio = statistics.median(ratios) if ratios else 0.0
        api_rps = statistics.median(r.rps for r in api)
        row: dict[str, Any] = {
            "scenario": scenario,
            "request": TITLES[scenario],
            "kind": "read" if scenario in READS else "write" if scenario in WRITES else "login",
            "connections": api[0].connections,
            "rounds": len(api),
            "api_rps": round(api_rps, 1),
            "baseline_rps": round(statistics.median(r.rps for r in base), 1),
            "ratio": round(ratio, 3),
            "round_ratios": [round(x, 3) for x in ratios],
            "api_p50_ms": ms(statistics.median(r.p50_ms for r in api)),
            "api_p99_ms": ms(statistics.median(r.p99_ms for r in api)),
            "baseline_p50_ms": ms(statistics.median(r.p50_ms for r in base)),
            "baseline_p99_ms": ms(statistics.median(r.p99_ms for r in base)),
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
            checks["every_connection_served"] = (
                row["api_in_flight"] >= IN_FLIGHT_SHARE * row["connections"]
            )
        row["checks"] = checks
        row["pass"] = all(checks.values())
        rows.append(row)
    return rows


# A busy loop at the lowest scheduling class there is: it runs only on CPU time that nothing
# else wants, and is preempted at once by anything that wakes.
IDLE_CLASS_BUSY_LOOP = (
    "import os\nos.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))\nwhile True: pass\n"
)


def reads_beside_busy_cores(
    load: Load, server: Server, duration: float, reads: dict[str, Any]
) -> Run:
    """The storm's reads while every core runs an IDLE_CLASS_BUSY_LOOP in a process of its
    own: what keeping the cores busy costs the reads on this machine, whoever keeps them
    busy and however politely. The storm's hashes run at nice 19, a step above."""
    loops = [
        CLEANUP.spawn(
            [sys.executable, "-c", IDLE_CLASS_BUSY_LOOP],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        time.sleep(1.0)
        return load.measure(server, "get_patient", duration, **reads)
    finally:
        for loop in loops:
            CLEANUP.stop(loop, grace=2.0)


def storm_check(cfg: Config, load: Load, server: Server) -> dict[str, Any]:
    """Reads' p99, idle and while logins saturate the CPU with bcrypt.

    Idle and storm windows alternate (up to STORM_PAIRS pairs) and the median of the pairs'
    ratios is judged, as the scenarios' ratios are: one window's p99 is its 1 % slowest
    requests, and on a shared machine a single pair moves by a tenth or more between
    identical runs.
    """
    reads = {
        "connections": STORM_READ_CONNECTIONS,
        "extra_env": {"BENCH_DELAY_MS": str(STORM_READ_DELAY_MS)},
    }
    duration = max(cfg.duration, LOGIN_MIN_SECONDS)
    pairs = []
    for _ in range(min(cfg.rounds, STORM_PAIRS)):
        # A storm (or the login scenario before the first pair) ends with logins still
        # hashing on the server that wrk has stopped waiting for: let them finish first.
        time.sleep(STORM_SETTLE_SECONDS)
        idle = load.measure(server, "get_patient", duration, **reads)
        floor = reads_beside_busy_cores(load, server, duration, reads)
        storm_result: dict[str, Any] = {}

        def storm(into: dict[str, Any] = storm_result) -> None:
            into.update(
                load.wrk(
                    server, "login", duration + 4, connections=LOGIN_CONNECTIONS, timeout_s=30.0
                )
            )

        thread = threading.Thread(target=storm, daemon=True)
        thread.start()
        time.sleep(2.0)  # let the storm reach its steady state
        during = load.measure(server, "get_patient", duration, **reads)
        thread.join(duration + 120)
        login_rps = (
            storm_result["requests"] / (storm_result["duration_us"] / 1e6) if storm_result else 0.0
        )
        pairs.append(
            {
                "idle_rps": idle.rps,
                "idle_p50_ms": ms(idle.p50_ms),
                "idle_p99_ms": ms(idle.p99_ms),
                "storm_rps": during.rps,
                "storm_p50_ms": ms(during.p50_ms),
                "storm_p99_ms": ms(during.p99_ms),
                "login_rps_during": round(login_rps, 1),
                "read_errors": idle.errors + during.errors,
                "login_errors": sum(storm_result.get("errors", {}).values()),
                "p99_ratio": round(during.p99_ms / idle.p99_ms if idle.p99_ms else 0.0, 2),
                "floor_p50_ms": ms(floor.p50_ms),
                "floor_p99_ms": ms(floor.p99_ms),
                "floor_p99_ratio": round(floor.p99_ms / idle.p99_ms if idle.p99_ms else 0.0, 2),
            }
        )

    def median(key: str) -> float:
        return float(statistics.median(pair[key] for pair in pairs))

    ratio = median("p99_ratio")
    # Judged on the storm alone; the busy loops' ratio says how much of it the machine sets.
    return {
        "target": server.name,
        "reads": f"get_patient, {STORM_READ_CONNECTIONS} connections, "
        f"{STORM_READ_DELAY_MS} ms pause between a connection's requests",
        "storm": f"login, {LOGIN_CONNECTIONS} connections",
        **{key: median(key) for key in pairs[0] if not key.endswith("errors")},
        "read_errors": sum(pair["read_errors"] for pair in pairs),
        "login_errors": sum(pair["login_errors"] for pair in pairs),
        "p99_ratio": ratio,
        "pairs": pairs,
        "pass": 0 < ratio <= 2.0,
    }


def soak(cfg: Config, load: Load, server: Server) -> dict[str, Any]:
    """Per-worker RSS before and after cfg.soak_requests mixed requests."""
    threads = min(cfg.threads, cfg.connections)
    warm = max(cfg.soak_requests // 20, 1000)
    log(f"memory soak on {server.name}: {warm} warm-up requests, then {cfg.soak_requests}")
    load.wrk(server, "mixed", 600, extra_env={"BENCH_STOP_AFTER": str(warm // threads)})
    start = memory(server)
    samples: list[dict[str, Any]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while not stop.wait(2.0):
            samples.append({"t": round(time.monotonic() - t0, 1), **memory(server)})

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        run = load.measure(
            server, "mixed", 600, extra_env={"BENCH_STOP_AFTER": str(cfg.soak_requests // threads)}
        )
    finally:
        stop.set()
        sampler.join(10)
    end = memory(server)
    growth = []
    for pid, before in zip(start["pids"], start["workers_mib"], strict=False):
        after = end["workers_mib"][end["pids"].index(pid)] if pid in end["pids"] else 0.0
        growth.append(round((after / before - 1) * 100, 1) if before else 0.0)
    return {
        "target": server.name,
        "requests": run.requests,
        "rps": run.rps,
        "errors": run.errors,
        "p99_ms": ms(run.p99_ms),
        "workers_start_mib": start["workers_mib"],
        "workers_end_mib": end["workers_mib"],
        "workers_max_mib": [
            max((s["workers_mib"][i] for s in samples if len(s["workers_mib"]) > i), default=0.0)
            for i in range(len(start["workers_mib"]))
        ],
        "growth_percent": growth,
        "same_workers": start["pids"] == end["pids"],
        "pass": bool(growth)
        and all(abs(g) <= 10 for g in growth)
        and start["pids"] == end["pids"]
        and run.requests >= cfg.soak_requests * 0.99,
        "samples": samples,
    }


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
            try:
                for scenario in ("get_patient", "list_patients"):
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
    verdicts = {}
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
    return result


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


# --- report -------------------------------------------------------------------------------


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
        f"each. bcrypt cost {c['bcrypt_rounds']}: one hash {report['hash_seconds'] * 1000:.0f} ms.",
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
        f"{c['connections']} connections; login: throughput ≥ 0.8 × cores ÷ one hash's "
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
            "Both servers gave the same status, body and paging headers for each checked request."
            if not bad
            else f"Responses differ: {bad}.",
            "",
        ]
    return "\n".join(out)


# --- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    CLEANUP.keep_db = cfg.keep_db
    started, started_at = time.monotonic(), datetime.now(UTC)
    try:
        return _main(cfg, started, started_at)
    finally:
        CLEANUP.run()


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
    claims_api = sorted(jwt_claims(pairs[0]["access"]))
    claims_base = sorted(jwt_claims(login(baseline, 1)["access"]))
    if claims_api != claims_base:
        log(f"WARNING: token claims differ: api {claims_api}, baseline {claims_base}")
    data_file = CLEANUP.workdir / "data.lua"
    write_lua_data(data_file, sizes, sizes.patients, tokens)
    parity = parity_checks(api, baseline, tokens[1], 1)

    minted = [0]
    per_thread = cfg.connections // min(cfg.threads, cfg.connections) + 4

    def mint_refresh_pools() -> Path:
        count = per_thread * min(cfg.threads, cfg.connections)
        fresh = [
            p["refresh"]
            for p in login_many(api, [(minted[0] + i) % sizes.users + 1 for i in range(count)])
        ]
        minted[0] += count
        path = CLEANUP.workdir / f"refresh-{minted[0]}.lua"
        write_refresh_pools(
            path,
            [
                fresh[i :: min(cfg.threads, cfg.connections)]
                for i in range(min(cfg.threads, cfg.connections))
            ],
        )
        return path

    load = Load(cfg, data_file)
    runs = scenario_runs(cfg, load, api, baseline, mint_refresh_pools)
    rows = summarize(cfg, runs, hash_seconds)

    storm = []
    if cfg.storm:
        for server in (api, baseline):
            log(f"login storm vs reads on {server.name}")
            storm.append(storm_check(cfg, load, server))
    soak_result = soak(cfg, load, api) if cfg.soak else None
    CLEANUP.stop(api.process)
    CLEANUP.stop(baseline.process)
    scale = scale_check(cfg, secret, password_hash, tokens) if cfg.scale else None

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
        "token_claims": {"api": claims_api, "baseline": claims_base},
        "parity": parity,
        "scenarios": rows,
        "storm": storm,
        "soak": soak_result,
        "scale": scale,
        "runs": {k: [asdict(r) for r in v] for k, v in runs.items()},
        "server_restarts": api.restarts + baseline.restarts + (scale or {}).get("restarts", []),
    }
    checks = [r["pass"] for r in rows] + [s["pass"] for s in storm]
    if soak_result:
        checks.append(soak_result["pass"])
    if scale:
        checks += [v["pass"] for k, v in scale["verdicts"].items() if k.startswith("api:")]
    report["all_targets_met"] = all(checks)
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    (cfg.out / "latest.md").write_text(markdown(report) + "\n")
    log(
        f"wrote {cfg.out / 'latest.md'} and latest.json in {report['elapsed_s']:.0f}s; "
        f"all targets met: {report['all_targets_met']}"
    )
    print(markdown(report))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers stopped and databases dropped", file=sys.stderr)
        sys.exit(130)
