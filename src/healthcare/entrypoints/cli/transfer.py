"""``healthcare import`` and ``healthcare export``: CSV (with a header row) or JSON lines.

Reading and writing files is this module's; validation, the transaction and the audit are
the use cases' (application/bulk.py). Both stream: an export holds one batch in memory, an
import one batch of records plus the errors it reports.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from healthcare.application.bulk import (
    DOCTOR_FIELDS,
    EXPORTED_ONLY,
    PATIENT_FIELDS,
    ImportReport,
    NumberedRecords,
    Record,
)
from healthcare.domain.entities import Principal
from healthcare.domain.errors import InvalidInput
from healthcare.entrypoints.cli.runtime import (
    as_admin,
    doctor_fields,
    echo_lines,
    fail,
    find_user,
    mapping_fields,
    patient_fields,
    print_json,
)
from healthcare.entrypoints.container import Container

T = TypeVar("T")
FORMATS = ("csv", "jsonl")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")

format_option = click.option(
    "--format",
    "file_format",
    type=click.Choice(FORMATS),
    help="csv or jsonl (default: from the file's extension, else csv).",
)


def _format_of(path: str | None, given: str | None) -> str:
    if given is not None:
        return given
    return "jsonl" if path is not None and Path(path).suffix.lower() in JSONL_SUFFIXES else "csv"


# Reading --------------------------------------------------------------------------------


def csv_records(handle: IO[str], known: Sequence[str], required: Sequence[str]) -> NumberedRecords:
    """The rows of a CSV file with a header, each with the line it starts on. A bad header
    stops the import at once (exit 1): no row could be read right."""
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        raise fail("line 1: the file is empty; a header row naming the columns is needed")
    header = [name.strip() for name in header]
    unknown = [name for name in header if name not in known and name not in EXPORTED_ONLY]
    missing = [name for name in required if name not in header]
    if unknown or missing or len(set(header)) != len(header):
        problems = []
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if len(set(header)) != len(header):
            problems.append("a column named twice")
        raise fail(f"line 1: {'; '.join(problems)} (known: {', '.join(known)})")

    def rows() -> Iterator[tuple[int, Record | InvalidInput]]:
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row:
                continue  # a blank line
            if len(row) != len(header):
                count = f"has {len(row)} values where the header has {len(header)}"
                yield line, InvalidInput.single("row", count)
            else:
                yield line, dict(zip(header, row, strict=True))

    return rows()


def _jsonl_records(handle: IO[str]) -> NumberedRecords:
    for number, text in enumerate(handle, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            yield number, InvalidInput.single("record", "is not valid JSON")
            continue
        if isinstance(record, dict):
            yield number, record
        else:
            yield number, InvalidInput.single("record", "is not a JSON object")


def _decoded(records: NumberedRecords) -> NumberedRecords:
    try:
        yield from records
    except UnicodeDecodeError as error:
        raise fail(f"The file is not UTF-8 text: {error.reason} at byte {error.start}") from error
    except csv.Error as error:
        raise fail(f"The file is not valid CSV: {error}") from error


@contextlib.contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[[int], None] | None]:
    """A spinner with a count on a terminal (stderr), nothing when piped."""
    if not enabled:
        yield None
        return
    columns = (
        SpinnerColumn(),
        TextColumn(f"{label} {{task.completed:,.0f}} records"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda n: progress.advance(task, n)


@contextlib.contextmanager
def bulk_work() -> Iterator[None]:
    """No cyclic garbage collection while records stream through: they hold no cycles
    (refcounting frees each), and the collector's passes over the batch in hand cost more
    than the validation. The command line's import runs inside it, and so does the bench's."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _interactive(as_json: bool) -> bool:
    return not as_json and sys.stderr.isatty()


def _report(report: ImportReport, what: str, *, skip_invalid: bool, as_json: bool) -> None:
    rejected = [
        {"line": row.line, "field": row.field, "message": row.message} for row in report.rejected
    ]
    refused = bool(rejected) and not skip_invalid
    if as_json:
        print_json({"imported": report.imported, "rejected": rejected})
    else:
        echo_lines(f"line {r['line']}: {r['field']}: {r['message']}" for r in rejected)
    lines = len({row.line for row in report.rejected})
    if refused:
        raise fail(
            f"{lines} invalid record(s); nothing imported (fix them, or --skip-invalid to "
            "import the others)"
        )
    if not as_json:
        skipped = f", {lines} invalid record(s) skipped" if lines else ""
        click.echo(f"Imported {report.imported} {what}{skipped}.")


@click.group("import")
def import_group() -> None:
    """Import records from CSV (with a header row) or JSON lines, in one transaction."""


file_argument = click.argument(
    "file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
)
skip_option = click.option(
    "--skip-invalid", is_flag=True, help="Import the valid records even if some are not."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")


def _open_records(
    file: Path, file_format: str | None, known: Sequence[str], required: Sequence[str]
) -> tuple[IO[str], NumberedRecords]:
    handle = file.open(encoding="utf-8", newline="")
    try:
        if _format_of(str(file), file_format) == "jsonl":
            return handle, _decoded(_jsonl_records(handle))
        return handle, _decoded(csv_records(handle, known, required))
    except BaseException:
        handle.close()
        raise


@import_group.command("patients")
@file_argument
@click.option("--owner", required=True, help="Whose patients they become: username, email or id.")
@format_option
@skip_option
@json_option
def import_patients(
    file: Path, owner: str, file_format: str | None, skip_invalid: bool, as_json: bool
) -> None:
    """Import patients from FILE for --owner (columns: name, age, gender, phone, email,
    address, notes; an export's id, owner and times are ignored)."""

    async def work(container: Container, principal: Principal) -> None:
        owner_user = await find_user(container, principal, owner)
        handle, records = _open_records(
            file, file_format, PATIENT_FIELDS, ("name", "age", "gender")
        )
        with handle, bulk_work(), _progress(_interactive(as_json), "Importing") as progress:
            report = await container.import_patients()(
                principal, owner_user.id, records, skip_invalid=skip_invalid, progress=progress
            )
        _report(
            report,
            f"patients for {owner_user.username!r}",
            skip_invalid=skip_invalid,
            as_json=as_json,
        )

    as_admin(work)


@import_group.command("doctors")
@file_argument
@format_option
@skip_option
@json_option
def import_doctors(file: Path, file_format: str | None, skip_invalid: bool, as_json: bool) -> None:
    """Import doctors from FILE (columns: name, specialization, email, phone)."""

    async def work(container: Container, principal: Principal) -> None:
        handle, records = _open_records(
            file, file_format, DOCTOR_FIELDS, ("name", "specialization")
        )
        with handle, bulk_work(), _progress(_interactive(as_json), "Importing") as progress:
            report = await container.import_doctors()(
                principal, records, skip_invalid=skip_invalid, progress=progress
            )
        _report(report, "doctors", skip_invalid=skip_invalid, as_json=as_json)

    as_admin(work)


# Writing --------------------------------------------------------------------------------


@click.group("export")
def export_group() -> None:
    """Export records as CSV (with a header row) or JSON lines, streamed."""


output_option = click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File (default: stdout)."
)


async def _write(
    records: AsyncIterator[T],
    fields: Callable[[T], dict[str, Any]],
    columns: Sequence[str],
    output: str | None,
    file_format: str | None,
) -> int:
    """Write ``records`` one by one; how many."""
    written = 0
    with contextlib.ExitStack() as stack:
        if output is None:
            handle: IO[str] = sys.stdout
        else:
            # (Blocking writes are fine: the command is the loop's only task.)
            path = Path(output)
            handle = stack.enter_context(path.open("w", encoding="utf-8", newline=""))  # noqa: ASYNC230
        progress = stack.enter_context(
            _progress(output is not None and sys.stderr.isatty(), "Exporting")
        )
        write = record_writer(handle, columns, _format_of(output, file_format))

        async for record in records:
            write(fields(record))
            written += 1
            if progress is not None and written % 1000 == 0:
                progress(1000)
        handle.flush()
    return written


def record_writer(
    handle: IO[str], columns: Sequence[str], file_format: str
) -> Callable[[dict[str, Any]], None]:
    """A function that writes one record; a CSV's header is written at once."""
    if file_format == "jsonl":

        def write_line(row: dict[str, Any]) -> None:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")

        return write_line
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(columns)

    def write_row(row: dict[str, Any]) -> None:
        writer.writerow(["" if row[c] is None else row[c] for c in columns])

    return write_row


PATIENT_EXPORT = ("id", "owner", *PATIENT_FIELDS, "created_at", "updated_at", "version")
DOCTOR_EXPORT = ("id", "created_by", *DOCTOR_FIELDS, "created_at", "updated_at", "version")
MAPPING_EXPORT = ("id", "patient_id", "doctor_id", "doctor_name", "created_at")
owner_option = click.option("--owner", help="Only this owner's (username, email or id).")


async def _owner_id(container: Container, principal: Principal, owner: str | None) -> int | None:
    return None if owner is None else (await find_user(container, principal, owner)).id


@export_group.command("patients")
@owner_option
@format_option
@output_option
def export_patients(owner: str | None, file_format: str | None, output: str | None) -> None:
    """Export every patient (or --owner's), by id."""

    async def work(container: Container, principal: Principal) -> None:
        owner_id = await _owner_id(container, principal, owner)
        records = await container.export_patients()(principal, owner_id)
        await _write(records, patient_fields, PATIENT_EXPORT, output, file_format)

    as_admin(work)


@export_group.command("doctors")
@format_option
@output_option
def export_doctors(file_format: str | None, output: str | None) -> None:
    """Export the doctor directory, by id."""

    async def work(container: Container, principal: Principal) -> None:
        records = await container.export_doctors()(principal)
        await _write(records, doctor_fields, DOCTOR_EXPORT, output, file_format)

    as_admin(work)


@export_group.command("mappings")
@owner_option
@format_option
@output_option
def export_mappings(owner: str | None, file_format: str | None, output: str | None) -> None:
    """Export every mapping (or those of --owner's patients), by id."""

    async def work(container: Container, principal: Principal) -> None:
        owner_id = await _owner_id(container, principal, owner)
        records = await container.export_mappings()(principal, owner_id)
        await _write(records, mapping_fields, MAPPING_EXPORT, output, file_format)

    as_admin(work)
