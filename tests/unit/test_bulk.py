"""Bulk import and export, and the command line's administrator over any owner's records
(through the owner-scoped use cases), against the in-memory adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pytest

from healthcare.application import bulk
from healthcare.application.bulk import RowError, doctor_from_record, patient_from_record
from healthcare.application.paging import PageRequest
from healthcare.domain.audit import AuditAction as A
from healthcare.domain.audit import AuditOutcome, Origin, ResourceType
from healthcare.domain.entities import Gender, PatientData, Principal, User
from healthcare.domain.errors import FieldError, Forbidden, InvalidInput, NotFound
from healthcare.domain.listing import search_key
from tests.unit.factories import Core

T = TypeVar("T")
ADA = {"name": "Ada", "age": "36", "gender": "female", "phone": "", "email": "", "notes": ""}


async def administrator(core: Core) -> User:
    user, _ = await core.sign_up(is_staff=True, is_superuser=True)
    return user


def numbered(*records: Any) -> list[tuple[int, Any]]:
    return [(line, record) for line, record in enumerate(records, start=2)]


async def collected(items: AsyncIterator[T]) -> list[T]:
    return [item async for item in items]


class TestRecords:
    def test_a_valid_patient_record(self) -> None:
        data = patient_from_record({**ADA, "address": "  ", "id": "7", "owner": "3"})
        assert data == PatientData("Ada", 36, Gender.FEMALE)

    def test_json_values_and_whole_numbers_in_text(self) -> None:
        assert patient_from_record({"name": "Bo", "age": 7, "gender": "Male"}).age == 7
        assert patient_from_record({"name": "Bo", "age": " 7 ", "gender": "Male"}).age == 7

    @pytest.mark.parametrize(
        ("record", "errors"),
        [
            ({}, {("name", "is required"), ("age", "is required"), ("gender", "is required")}),
            ({**ADA, "age": "4.5"}, {("age", "must be a whole number")}),
            ({**ADA, "age": True}, {("age", "must be a whole number")}),
            ({**ADA, "age": "151"}, {("age", "must be between 0 and 150")}),
            ({**ADA, "name": "  "}, {("name", "must not be blank")}),
            ({**ADA, "name": 5}, {("name", "must be text")}),
            ({**ADA, "email": "nope"}, {("email", "must be a valid email address")}),
            ({**ADA, "shoe": "44"}, {("shoe", "is not a known field")}),
            (
                {**ADA, "gender": "robot", "phone": "x" * 33},
                {
                    ("gender", "must be one of Male, Female, Other, Unknown"),
                    ("phone", "must be at most 32 characters"),
                },
            ),
        ],
    )
    def test_every_bad_field_is_named(
        self, record: dict[str, object], errors: set[tuple[str, str]]
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            patient_from_record(record)
        assert {(e.field, e.message) for e in caught.value.errors} == errors

    def test_doctor_records(self) -> None:
        assert doctor_from_record({"name": "Dr X", "specialization": "Y"}).name == "Dr X"
        with pytest.raises(InvalidInput) as caught:
            doctor_from_record({"name": "Dr X", "specialization": ""})
        assert caught.value.errors == (FieldError("specialization", "is required"),)


class TestImportPatients:
    async def test_imports_audits_each_record_and_reports(self, core: Core) -> None:
        admin = await administrator(core)
        owner, _ = await core.sign_up()
        seen: list[int] = []
        principal = Principal(admin.id, True, Origin("cli", "cli-1"))

        report = await core.container.import_patients()(
            principal, owner.id, numbered(ADA, {**ADA, "name": "Bob"}), progress=seen.append
        )

        assert (report.imported, report.rejected) == (2, ())
        assert sum(seen) == 2
        patients = list(core.store.tables.patients.values())
        assert [(p.name, p.created_by) for p in patients] == [("Ada", owner.id), ("Bob", owner.id)]
        events = [e for e in core.audit_events() if e.action is A.PATIENT_IMPORT]
        assert [
            (e.user_id, e.resource_type, e.resource_id, e.client, e.request_id) for e in events
        ] == [
            (admin.id, ResourceType.PATIENT, patients[0].id, "cli", "cli-1"),
            (admin.id, ResourceType.PATIENT, patients[1].id, "cli", "cli-1"),
            (admin.id, ResourceType.PATIENT, None, "cli", "cli-1"),
        ]

    async def test_any_bad_record_imports_nothing(
        self, core: Core, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(bulk, "BATCH", 2)  # a batch is written before the bad record
        admin = await administrator(core)
        records = numbered(ADA, ADA, ADA, {**ADA, "age": "x"}, InvalidInput.single("record", "?"))

        report = await core.container.import_patients()(admin.principal(), admin.id, records)

        assert report.imported == 0
        assert report.rejected == (
            RowError(5, "age", "must be a whole number"),
            RowError(6, "record", "?"),
        )
        assert core.store.tables.patients == {}
        last = core.audit_events()[-1]
        assert (last.action, last.outcome, last.user_id) == (
            A.PATIENT_IMPORT,
            AuditOutcome.INVALID,
            admin.id,
        )
        assert not [
            e
            for e in core.audit_events()
            if e.resource_id is not None and e.action is A.PATIENT_IMPORT
        ]

    async def test_skip_invalid_imports_the_others(
        self, core: Core, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(bulk, "BATCH", 2)
        admin = await administrator(core)
        records = numbered(ADA, {**ADA, "age": "x"}, ADA, ADA, ADA)

        report = await core.container.import_patients()(
            admin.principal(), admin.id, records, skip_invalid=True
        )

        assert report.imported == 4
        assert report.rejected == (RowError(3, "age", "must be a whole number"),)
        assert len(core.store.tables.patients) == 4

    async def test_refusals(self, core: Core) -> None:
        admin = await administrator(core)
        plain, _ = await core.sign_up()
        with pytest.raises(Forbidden):
            await core.container.import_patients()(plain.principal(), plain.id, numbered(ADA))
        with pytest.raises(NotFound):
            await core.container.import_patients()(admin.principal(), 10**9, numbered(ADA))
        assert core.store.tables.patients == {}

    async def test_a_failing_store_leaves_nothing(
        self, core: Core, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(bulk, "BATCH", 2)
        admin = await administrator(core)

        def records() -> Any:
            yield from numbered(ADA, ADA, ADA)
            raise RuntimeError("the file went away")

        with pytest.raises(RuntimeError):
            await core.container.import_patients()(admin.principal(), admin.id, records())
        assert core.store.tables.patients == {}


class TestImportDoctors:
    async def test_the_administrator_is_the_creator(self, core: Core) -> None:
        admin = await administrator(core)
        records = numbered({"name": "Dr X", "specialization": "Y"}, {"name": "Dr Z"})
        refused = await core.container.import_doctors()(admin.principal(), records)
        assert (refused.imported, refused.rejected) == (
            0,
            (RowError(3, "specialization", "is required"),),
        )
        report = await core.container.import_doctors()(
            admin.principal(), records, skip_invalid=True
        )
        assert report.imported == 1
        (doctor,) = core.store.tables.doctors.values()
        assert doctor.created_by == admin.id
        event = next(
            e for e in core.audit_events() if e.action is A.DOCTOR_IMPORT and e.resource_id
        )
        assert (event.resource_type, event.resource_id) == (ResourceType.DOCTOR, doctor.id)


class TestExport:
    async def test_in_batches_by_id_with_an_owner_or_not(
        self, core: Core, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(bulk, "BATCH", 2)
        admin = await administrator(core)
        owner, _ = await core.sign_up()
        mine = [await core.add_patient(owner.principal()) for _ in range(5)]
        other = await core.add_patient(admin.principal())

        exported = await collected(
            await core.container.export_patients()(admin.principal(), owner.id)
        )
        assert exported == mine
        every = await collected(await core.container.export_patients()(admin.principal(), None))
        assert [p.id for p in every] == sorted([*(p.id for p in mine), other.id])
        doctor = await core.add_doctor(admin.principal())
        await core.container.assign_doctor()(owner.principal(), mine[0].id, doctor.id)
        mappings = await collected(
            await core.container.export_mappings()(admin.principal(), owner.id)
        )
        assert [(m.patient_id, m.doctor.id) for m in mappings] == [(mine[0].id, doctor.id)]
        assert (
            await collected(await core.container.export_mappings()(admin.principal(), admin.id))
            == []
        )
        doctors = await collected(await core.container.export_doctors()(admin.principal()))
        assert doctors == [doctor]
        assert core.audit_events()[-1].action is A.DOCTOR_EXPORT

    async def test_refusals(self, core: Core) -> None:
        plain, _ = await core.sign_up()
        admin = await administrator(core)
        with pytest.raises(Forbidden):
            await core.container.export_patients()(plain.principal(), None)
        with pytest.raises(NotFound):
            await core.container.export_patients()(admin.principal(), 10**9)


class TestAdministratorsOverRecords:
    """What the command line does as ``--as``: the owner-scoped use cases, by id alone."""

    async def test_identify_list_read_and_assign(self, core: Core) -> None:
        admin = await administrator(core)
        owner, _ = await core.sign_up()
        origin = Origin("cli", "r1")
        uses = core.container
        principal = await uses.identify_administrator()(admin.username, origin)
        assert principal == Principal(admin.id, True, origin)
        patient = await core.add_patient(owner.principal(), name="Zoë")

        page = await uses.list_patients()(principal, PageRequest(), owner_id=owner.id)
        assert (list(page.items), page.total) == ([patient], 1)
        assert await uses.get_patient()(principal, patient.id, every_owner=True) == patient
        read = core.audit_events()[-1]
        assert (read.action, read.user_id, read.resource_id, read.client) == (
            A.PATIENT_READ, admin.id, patient.id, "cli",
        )  # fmt: skip
        doctor = await core.add_doctor(admin.principal())
        mapping = await uses.assign_doctor()(principal, patient.id, doctor.id, every_owner=True)
        assert (mapping.patient_id, mapping.doctor.id) == (patient.id, doctor.id)
        created = core.audit_events()[-1]
        assert (created.action, created.user_id, created.resource_id) == (
            A.MAPPING_CREATE, admin.id, mapping.id,
        )  # fmt: skip
        listed = await uses.list_patient_mappings()(
            principal, patient.id, PageRequest(), every_owner=True
        )
        assert [m.id for m in listed.items] == [mapping.id]
        listing = core.audit_events()[-1]
        assert (listing.action, listing.user_id, listing.resource_id) == (
            A.MAPPING_LIST_PATIENT, admin.id, patient.id,
        )  # fmt: skip
        # The owner's own view is the same record and the same mapping.
        mine = await uses.list_patient_mappings()(owner.principal(), patient.id, PageRequest())
        assert list(mine.items) == list(listed.items)

    async def test_refusals_and_missing_records(self, core: Core) -> None:
        admin = await administrator(core)
        plain, _ = await core.sign_up()
        uses = core.container
        with pytest.raises(Forbidden):
            await uses.identify_administrator()(plain.username, Origin())
        with pytest.raises(Forbidden):
            await uses.identify_administrator()("nobody", Origin())
        patient = await core.add_patient(admin.principal())
        doctor = await core.add_doctor(admin.principal())
        for call in (
            uses.get_patient()(plain.principal(), patient.id, every_owner=True),
            uses.list_patients()(plain.principal(), PageRequest(), owner_id=admin.id),
            uses.list_patient_mappings()(
                plain.principal(), patient.id, PageRequest(), every_owner=True
            ),
            uses.assign_doctor()(plain.principal(), patient.id, doctor.id, every_owner=True),
        ):
            with pytest.raises(Forbidden):
                await call
        assert [e.outcome for e in core.audit_events()[-4:]] == [AuditOutcome.DENIED] * 4
        for call in (
            uses.get_patient()(admin.principal(), 10**9, every_owner=True),
            uses.list_patient_mappings()(admin.principal(), 10**9, PageRequest(), every_owner=True),
            uses.assign_doctor()(admin.principal(), 10**9, doctor.id, every_owner=True),
        ):
            with pytest.raises(NotFound):
                await call
        with pytest.raises(NotFound):  # the patient exists; the doctor does not
            await uses.assign_doctor()(admin.principal(), patient.id, 10**9, every_owner=True)


def test_search_key_of_ascii_is_its_lower_case() -> None:
    """The ASCII shortcut gives what the full rule gives."""
    for code in range(128):
        text = chr(code) * 2 + "Aa"
        assert search_key(text) == text.lower()
    assert search_key("Zoë ÉCOLE") == "zoe ecole"
