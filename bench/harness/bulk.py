"""`bench/run.py --bulk [--rows N]`: the bulk import's rate against a plain COPY.

On its own database (BENCH_DATABASE_URL's name + ``_bulk``), in one run:

- **COPY**: the same N patients, already in the table's form (search keys computed, times
  given), sent by ``COPY patient (...) FROM STDIN (FORMAT csv)`` in 1 MB blocks and
  committed: what the database can take, with nothing checked.
- **import**: the command line's import (``healthcare import patients FILE --owner``), run
  in-process from the CSV file: read, every record validated with the API's rules, written
  by batches by COPY, an audit event per record, committed.

Each is run ``--bulk-rounds`` times, alternating, the faster of each kept; the ratio is
import / COPY (the target: at least 0.5). Memory: the process's peak resident size above
what it held before, sampled every 20 ms during the import and during an export of every
imported patient to /dev/null; flat means the same at 100,000 and at 1,000,000 rows.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from healthcare.domain.entities import Principal
from healthcare.domain.listing import search_key
from healthcare.entrypoints.cli.runtime import patient_fields
from healthcare.entrypoints.cli.transfer import (
    PATIENT_EXPORT,
    bulk_work,
    csv_records,
    record_writer,
)
from healthcare.entrypoints.container import Container, build_container, close_container
from healthcare.entrypoints.settings import load_settings

from .database import create_database, database_name, migrate, with_database
from .runtime import CLEANUP, log

FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]
GENDERS = ["Male", "Female", "Other", "Unknown"]
IMPORT_COLUMNS = ["name", "age", "gender", "phone", "email", "address", "notes"]
COPY_COLUMNS = (
    "created_by, name, name_key, age, gender, phone, email, address, notes, created_at, updated_at"
)
BLOCK = 1 << 20


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The bulk import against a plain COPY.")
    parser.add_argument("--bulk", action="store_true", required=True)
    parser.add_argument("--rows", type=int, default=100_000, help="patients per run (100000)")
    parser.add_argument("--bulk-rounds", type=int, default=2, help="runs of each (2)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    return parser.parse_args(argv)


def patients(rows: int) -> Iterator[list[str]]:
    rng = random.Random(1234)  # noqa: S311 - test data, the same every run
    for i in range(rows):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {i}"
        yield [
            name,
            str(rng.randint(0, 110)),
            rng.choice(GENDERS),
            f"+44 20 {i % 10_000:04d} {rng.randint(0, 9999):04d}",
            f"patient{i}@example.org",
            f"{i} Example Street, London",
            "" if i % 3 else "Allergic to penicillin.",
        ]


def write_files(folder: Path, rows: int, owner_id: int) -> tuple[Path, Path]:
    """The import's CSV, and the same rows as COPY takes them."""
    source, table_form = folder / "patients.csv", folder / "patients.copy.csv"
    now = datetime.now(UTC).isoformat()
    with (
        source.open("w", newline="", encoding="utf-8") as plain,
        table_form.open("w", newline="", encoding="utf-8") as copy,
    ):
        to_import, to_copy = csv.writer(plain), csv.writer(copy)
        to_import.writerow(IMPORT_COLUMNS)
        for row in patients(rows):
            to_import.writerow(row)
            name, *rest = row
            to_copy.writerow([owner_id, name, search_key(name), *rest, now, now])
    return source, table_form


def plain_copy(url: str, table_form: Path) -> float:
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        sql = f"COPY patient ({COPY_COLUMNS}) FROM STDIN (FORMAT csv)"
        with cursor.copy(sql) as copy, table_form.open("rb") as handle:
            while block := handle.read(BLOCK):
                copy.write(block)
        conn.commit()
    return time.perf_counter() - started


class PeakMemory:
    """The peak resident size above the starting one, sampled in a thread."""

    def __init__(self) -> None:
        self.start = _rss()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())

    @property
    def grown_mb(self) -> float:
        return (self.peak - self.start) / (1 << 20)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextmanager
def _container(url: str, folder: Path) -> Iterator[Container]:
    environ = {
        "DATABASE_URL": url,
        "SECRET_KEY": "b" * 48,
        "BCRYPT_ROUNDS": "4",
        "DB_POOL_SIZE": "2",  # as the command line's (runtime.CLI_POOL_SIZE)
    }
    settings = load_settings(environ, env_file=None, data_dir=folder)
    yield build_container(settings)


async def _accounts(container: Container) -> tuple[Principal, int, int]:
    """The administrator who imports, and the owners of the copied and imported rows."""
    register = container.register_user()
    admin = await register(
        "bulk-admin", "bulk-admin@example.org", "bulk admin pass", is_superuser=True
    )
    copied = await register("bulk-copied", "bulk-copied@example.org", "bulk owner pass")
    imported = await register("bulk-imported", "bulk-imported@example.org", "bulk owner pass")
    return admin.principal(), copied.id, imported.id


async def _import(
    container: Container, principal: Principal, owner_id: int, source: Path
) -> tuple[float, int]:
    started = time.perf_counter()
    with source.open(encoding="utf-8", newline="") as handle, bulk_work():
        records = csv_records(handle, IMPORT_COLUMNS, ("name", "age", "gender"))
        report = await container.import_patients()(principal, owner_id, records)
    return time.perf_counter() - started, report.imported


async def _export(container: Container, principal: Principal, owner_id: int) -> tuple[float, int]:
    started = time.perf_counter()
    count = 0
    with open(os.devnull, "w", encoding="utf-8") as sink:  # noqa: ASYNC230 - as the CLI
        write = record_writer(sink, PATIENT_EXPORT, "csv")
        async for patient in await container.export_patients()(principal, owner_id):
            write(patient_fields(patient))
            count += 1
    return time.perf_counter() - started, count


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    CLEANUP.keep_db = args.keep_db
    try:
        return _run(args)
    finally:
        CLEANUP.run()


def _run(args: argparse.Namespace) -> int:
    base = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/healthcare_bench"
    )
    url = with_database(base, f"{database_name(base)}_bulk")
    log(f"bulk: {args.rows:,} patients into {database_name(url)}")
    create_database(url)
    migrate(url)
    with tempfile.TemporaryDirectory() as tmp, _container(url, Path(tmp)) as container:
        folder = Path(tmp)

        loop = asyncio.new_event_loop()
        try:
            principal, copied_id, owner_id = loop.run_until_complete(_accounts(container))
            source, table_form = write_files(folder, args.rows, copied_id)
            copies: list[float] = []
            imports: list[float] = []
            memory = 0.0
            for _ in range(args.bulk_rounds):
                copies.append(plain_copy(url, table_form))
                with PeakMemory() as peak:
                    seconds, imported = loop.run_until_complete(
                        _import(container, principal, owner_id, source)
                    )
                assert imported == args.rows, imported
                imports.append(seconds)
                memory = max(memory, peak.grown_mb)
                log(f"  COPY {copies[-1]:.2f} s, import {imports[-1]:.2f} s")
            with PeakMemory() as peak:
                export_seconds, exported = loop.run_until_complete(
                    _export(container, principal, owner_id)
                )
            loop.run_until_complete(close_container(container))
        finally:
            loop.close()
    copy_rate, import_rate = args.rows / min(copies), args.rows / min(imports)
    _report(
        {
            "rows": args.rows,
            "copy_rows_per_s": round(copy_rate),
            "import_rows_per_s": round(import_rate),
            "ratio": round(import_rate / copy_rate, 2),
            "import_peak_rss_growth_mb": round(memory, 1),
            "export_rows": exported,
            "export_rows_per_s": round(exported / export_seconds),
            "export_peak_rss_growth_mb": round(peak.grown_mb, 1),
        },
        log,
    )
    return 0


def _report(figures: dict[str, Any], out: Callable[[str], None]) -> None:
    out(
        f"bulk import: {figures['import_rows_per_s']:,} rows/s; plain COPY: "
        f"{figures['copy_rows_per_s']:,} rows/s; ratio {figures['ratio']} (target >= 0.5)"
    )
    out(
        f"memory: import +{figures['import_peak_rss_growth_mb']} MB peak; export of "
        f"{figures['export_rows']:,} rows at {figures['export_rows_per_s']:,} rows/s, "
        f"+{figures['export_peak_rss_growth_mb']} MB peak"
    )
