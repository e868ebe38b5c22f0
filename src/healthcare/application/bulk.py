"""Bulk import and export of patients and doctors, for administrators (the command line).

An import validates every record with the API's rules and writes them in one transaction,
in batches: a record that breaks a rule is reported with its line and field, and unless the
caller skips such records, none is kept. Each record imported gets its own audit event (the
administrator as actor, the record as resource, the import's request id), and the import
one more that names no record; on PostgreSQL the database makes the records' events
itself, from their ids.

An export reads by id in batches (keyset, each batch its own short read), so memory stays
flat however many records there are.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from collections.abc import Mapping as FieldMap
from dataclasses import dataclass
from typing import Generic, TypeVar

from healthcare.application.audit import Auditor
from healthcare.application.ports import UnitOfWork, UserRepository
from healthcare.application.users import refuse_unless_admin
from healthcare.domain.audit import AuditAction, AuditEvent, AuditOutcome, ResourceType
from healthcare.domain.entities import Doctor, DoctorData, Mapping, Patient, PatientData, Principal
from healthcare.domain.errors import FieldError, InvalidInput, NotFound
from healthcare.domain.rules import parse_patient, validate_doctor

T = TypeVar("T")
Record = FieldMap[str, object]  # a field's name to its value: text, or a number from JSON
# With the line each record starts on; an InvalidInput stands for a record the entrypoint
# could not read at all (not JSON, say), reported as any other rejected record.
NumberedRecords = Iterable[tuple[int, Record | InvalidInput]]
Progress = Callable[[int], None]  # told how many more records were read


async def existing_owner(users: UserRepository, owner_id: int) -> None:
    if await users.get(owner_id) is None:
        raise NotFound("User", owner_id)


PATIENT_FIELDS = ("name", "age", "gender", "phone", "email", "address", "notes")
DOCTOR_FIELDS = ("name", "specialization", "email", "phone")
# What an export writes besides those, and an import ignores: an exported file imports as is.
EXPORTED_ONLY = frozenset({"id", "owner", "created_by", "created_at", "updated_at", "version"})
BATCH = 10_000  # records per statement (COPY) of an import, and per read of an export
YIELD_EVERY = 250  # records read between two looks at the batch being stored


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    imported: int
    rejected: tuple[RowError, ...]


def _fields(
    record: Record, known: Sequence[str], required: Sequence[str], integers: Sequence[str] = ()
) -> tuple[dict[str, object], list[FieldError]]:
    """The record's values by field (an empty text is a missing value; a whole number in
    text is a number), and what is wrong with their presence and types."""
    errors = []
    if not _allowed(tuple(known)).issuperset(record):
        errors = [
            FieldError(name, "is not a known field")
            for name in record
            if name not in known and name not in EXPORTED_ONLY
        ]
    values: dict[str, object] = {}
    for name in known:
        value = record.get(name)
        if isinstance(value, str) and value.strip():  # (the usual case, first)
            if name in integers:
                value = _whole_number(value)
                if value is None:
                    errors.append(FieldError(name, "must be a whole number"))
        elif value is None or value == "":  # missing
            if name in required:
                errors.append(FieldError(name, "is required"))
            value = None
        elif isinstance(value, str):  # blank: the rules refuse a required one as the API does
            value = value if name in required and name not in integers else None
        elif name in integers:
            value = _whole_number(value)
            if value is None:
                errors.append(FieldError(name, "must be a whole number"))
        else:
            errors.append(FieldError(name, "must be text"))
            value = None
        values[name] = value
    return values, errors


@functools.cache
def _allowed(known: tuple[str, ...]) -> frozenset[str]:
    return frozenset(known) | EXPORTED_ONLY


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("+-").isdigit() and text.isascii():
            return int(text)
    return None


def _with_rule_errors(errors: list[FieldError], check: Callable[[], T]) -> T:
    """``check``'s result; else every error, the rule's on fields not already named."""
    try:
        result = check()
    except InvalidInput as invalid:
        named = {error.field for error in errors}
        errors += [error for error in invalid.errors if error.field not in named]
        raise InvalidInput(errors) from None
    if errors:
        raise InvalidInput(errors)
    return result


def patient_from_record(record: Record) -> PatientData:
    """A patient from an imported record, held to the API's rules; InvalidInput names every
    bad field."""
    values, errors = _fields(record, PATIENT_FIELDS, ("name", "age", "gender"), ("age",))

    def check() -> PatientData:
        return parse_patient(
            name=str(values["name"] or ""),
            age=values["age"] if isinstance(values["age"], int) else 0,
            gender=str(values["gender"] or ""),
            phone=_text(values["phone"]),
            email=_text(values["email"]),
            address=_text(values["address"]),
            notes=_text(values["notes"]),
        )

    return _with_rule_errors(errors, check)


def doctor_from_record(record: Record) -> DoctorData:
    values, errors = _fields(record, DOCTOR_FIELDS, ("name", "specialization"))
    data = DoctorData(
        str(values["name"] or ""),
        str(values["specialization"] or ""),
        _text(values["email"]),
        _text(values["phone"]),
    )

    def check() -> DoctorData:
        validate_doctor(data)
        return data

    return _with_rule_errors(errors, check)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class _Kind(Generic[T]):
    """What is imported: the import's audit action and resource, how a record is read, and
    how a batch is stored (returning the new ids)."""

    action: AuditAction
    resource: ResourceType
    parse: Callable[[Record], T]
    add_many: Callable[[UnitOfWork, Sequence[T]], Awaitable[Sequence[int]]]


class _Import:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def _run(
        self,
        principal: Principal,
        kind: _Kind[T],
        owner_id: int | None,
        records: NumberedRecords,
        *,
        skip_invalid: bool,
        progress: Progress | None,
    ) -> ImportReport:
        """Validate every record, write the valid ones by batches in one transaction with
        an audit event each, and commit unless a record was rejected and not to be skipped
        (the refusal is then the import's audit event)."""
        rejected: list[RowError] = []
        try:
            async with self._audit.of(principal, kind.action, kind.resource) as audit:
                refuse_unless_admin(principal)
                async with self._uow as uow:
                    if owner_id is not None:
                        await existing_owner(uow.users, owner_id)
                    imported = await _write(
                        uow,
                        kind,
                        records,
                        event=audit.event(AuditOutcome.SUCCESS),
                        rejected=rejected,
                        skip_invalid=skip_invalid,
                        progress=progress,
                    )
                    if rejected and not skip_invalid:
                        # (Only for the audit outcome: the report lists every one.)
                        raise InvalidInput(
                            [
                                FieldError(f"line {e.line}: {e.field}", e.message)
                                for e in rejected[:100]
                            ]
                        )
                    await audit.stage(uow)
                    await uow.commit()
        except InvalidInput:
            if not rejected:
                raise
            return ImportReport(0, tuple(rejected))  # (the unit rolled back)
        return ImportReport(imported, tuple(rejected))


async def _write(
    uow: UnitOfWork,
    kind: _Kind[T],
    records: NumberedRecords,
    *,
    event: AuditEvent,
    rejected: list[RowError],
    skip_invalid: bool,
    progress: Progress | None,
) -> int:
    """How many records were written; the rejected ones are added to ``rejected``. Once a
    record is rejected and not to be skipped, nothing more is written (the rest are still
    validated, so that every bad record is reported).

    A batch is stored while the next one is read and validated: the database works on one
    while this process works on the other (the reading yields to the store now and then).
    """
    imported = 0
    storing: asyncio.Task[None] | None = None

    async def store(batch: list[T]) -> None:
        nonlocal imported
        ids = await kind.add_many(uow, batch)
        await uow.audit.add_for_each(event, ids)
        imported += len(ids)

    async def hand_over(batch: list[T]) -> None:
        nonlocal storing
        if storing is not None:
            await storing  # (raises what the store raised)
            storing = None
        if batch and (skip_invalid or not rejected):
            storing = asyncio.create_task(store(batch))
        if progress is not None:
            progress(len(batch))

    batch: list[T] = []
    try:
        for count, (line, record) in enumerate(records, start=1):
            try:
                if isinstance(record, InvalidInput):
                    raise record
                batch.append(kind.parse(record))
            except InvalidInput as invalid:
                rejected += [RowError(line, e.field, e.message) for e in invalid.errors]
                if progress is not None:
                    progress(1)
            if len(batch) >= BATCH:
                await hand_over(batch)
                batch = []
            elif count % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the store send what it has, or see its answer
        await hand_over(batch)
        await hand_over([])
    finally:
        if storing is not None and not storing.done():
            storing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await storing
    return imported


class ImportPatients(_Import):
    async def __call__(
        self,
        principal: Principal,
        owner_id: int,
        records: NumberedRecords,
        *,
        skip_invalid: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        """The records become ``owner_id``'s patients. Rejected records are in the report;
        if any is and ``skip_invalid`` is not set, nothing is imported."""

        async def add_many(uow: UnitOfWork, rows: Sequence[PatientData]) -> Sequence[int]:
            return await uow.patients.add_many(owner_id, rows)

        kind = _Kind(
            AuditAction.PATIENT_IMPORT, ResourceType.PATIENT, patient_from_record, add_many
        )
        return await self._run(
            principal,
            kind,
            owner_id,
            records,
            skip_invalid=skip_invalid,
            progress=progress,
        )


class ImportDoctors(_Import):
    """Add records to the doctor directory, the administrator as their creator."""

    async def __call__(
        self,
        principal: Principal,
        records: NumberedRecords,
        *,
        skip_invalid: bool = False,
        progress: Progress | None = None,
    ) -> ImportReport:
        async def add_many(uow: UnitOfWork, rows: Sequence[DoctorData]) -> Sequence[int]:
            return await uow.doctors.add_many(principal.user_id, rows)

        kind = _Kind(AuditAction.DOCTOR_IMPORT, ResourceType.DOCTOR, doctor_from_record, add_many)
        return await self._run(
            principal,
            kind,
            None,
            records,
            skip_invalid=skip_invalid,
            progress=progress,
        )


class _Export:
    def __init__(self, uow: UnitOfWork, auditor: Auditor) -> None:
        self._uow = uow
        self._audit = auditor

    async def _checked(
        self, principal: Principal, action: AuditAction, owner_id: int | None
    ) -> None:
        async with self._audit.of(principal, action):
            refuse_unless_admin(principal)
            if owner_id is not None:
                async with self._uow as uow:
                    await existing_owner(uow.users, owner_id)

    async def _batches(
        self, fetch: Callable[[UnitOfWork, int], Awaitable[Sequence[T]]], key: Callable[[T], int]
    ) -> AsyncIterator[T]:
        after = 0
        while True:
            async with self._uow as uow:
                batch = await fetch(uow, after)
            for item in batch:
                yield item
            if len(batch) < BATCH:
                return
            after = key(batch[-1])


class ExportPatients(_Export):
    async def __call__(self, principal: Principal, owner_id: int | None) -> AsyncIterator[Patient]:
        """Every patient (of ``owner_id``, if given), by id."""
        await self._checked(principal, AuditAction.PATIENT_EXPORT, owner_id)

        async def fetch(uow: UnitOfWork, after: int) -> Sequence[Patient]:
            return await uow.patients.batch_after(owner_id, after, BATCH)

        return self._batches(fetch, lambda patient: patient.id)


class ExportDoctors(_Export):
    async def __call__(self, principal: Principal) -> AsyncIterator[Doctor]:
        await self._checked(principal, AuditAction.DOCTOR_EXPORT, None)

        async def fetch(uow: UnitOfWork, after: int) -> Sequence[Doctor]:
            return await uow.doctors.batch_after(after, BATCH)

        return self._batches(fetch, lambda doctor: doctor.id)


class ExportMappings(_Export):
    async def __call__(self, principal: Principal, owner_id: int | None) -> AsyncIterator[Mapping]:
        await self._checked(principal, AuditAction.MAPPING_EXPORT, owner_id)

        async def fetch(uow: UnitOfWork, after: int) -> Sequence[Mapping]:
            return await uow.mappings.batch_after(owner_id, after, BATCH)

        return self._batches(fetch, lambda mapping: mapping.id)
