"""The audit trail: what each use case records, and how the buffered writer keeps events."""

from __future__ import annotations

import asyncio
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pytest

from healthcare.adapters.audit_trail import BufferedAuditTrail
from healthcare.adapters.persistence.memory import MemoryUnitOfWork
from healthcare.application.audit import Auditor
from healthcare.application.paging import PageRequest
from healthcare.application.patients import CreatePatient
from healthcare.domain.audit import (
    AuditAction,
    AuditEvent,
    AuditOutcome,
    AuditQuery,
    Origin,
    ResourceType,
)
from healthcare.domain.entities import Principal
from healthcare.domain.errors import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
)
from tests.unit.factories import Core, PatientDataFactory

HERE = Origin(client="198.51.100.7", request_id="req-42")
A = AuditAction
PATIENT, MAPPING, USER = ResourceType.PATIENT, ResourceType.MAPPING, ResourceType.USER


def summary(events: list[AuditEvent]) -> list[tuple[Any, ...]]:
    return [(e.action, e.outcome, e.user_id, e.resource_type, e.resource_id) for e in events]


def from_here(principal: Principal) -> Principal:
    return Principal(principal.user_id, principal.is_admin, HERE)


class TestPatientEvents:
    async def test_every_action_on_a_patient_is_recorded_with_its_origin(
        self, core: Core, alice: Principal
    ) -> None:
        me = from_here(alice)
        patient = await core.add_patient(me)
        await core.container.get_patient()(me, patient.id)
        await core.container.list_patients()(me, PageRequest())
        await core.container.update_patient()(me, patient.id, PatientDataFactory.build())
        await core.container.delete_patient()(me, patient.id)

        events = core.audit_events()
        assert summary(events) == [
            (A.PATIENT_CREATE, AuditOutcome.SUCCESS, alice.user_id, PATIENT, patient.id),
            (A.PATIENT_READ, AuditOutcome.SUCCESS, alice.user_id, PATIENT, patient.id),
            (A.PATIENT_LIST, AuditOutcome.SUCCESS, alice.user_id, PATIENT, None),
            (A.PATIENT_UPDATE, AuditOutcome.SUCCESS, alice.user_id, PATIENT, patient.id),
            (A.PATIENT_DELETE, AuditOutcome.SUCCESS, alice.user_id, PATIENT, patient.id),
        ]
        assert {(e.client, e.request_id) for e in events} == {("198.51.100.7", "req-42")}
        assert all(e.occurred_at == core.clock.now() for e in events)

    async def test_refusals_are_recorded_and_change_nothing(
        self, core: Core, alice: Principal, bob: Principal
    ) -> None:
        patient = await core.add_patient(alice)
        before = len(core.audit_events())

        with pytest.raises(NotFound):
            await core.container.get_patient()(bob, patient.id)
        with pytest.raises(NotFound):
            await core.container.update_patient()(bob, patient.id, PatientDataFactory.build())
        with pytest.raises(NotFound):
            await core.container.delete_patient()(bob, patient.id)
        with pytest.raises(InvalidInput):
            await core.container.create_patient()(bob, PatientDataFactory.build(name=""))

        assert summary(core.audit_events()[before:]) == [
            (A.PATIENT_READ, AuditOutcome.NOT_FOUND, bob.user_id, PATIENT, patient.id),
            (A.PATIENT_UPDATE, AuditOutcome.NOT_FOUND, bob.user_id, PATIENT, patient.id),
            (A.PATIENT_DELETE, AuditOutcome.NOT_FOUND, bob.user_id, PATIENT, patient.id),
            (A.PATIENT_CREATE, AuditOutcome.INVALID, bob.user_id, PATIENT, None),
        ]
        assert await core.container.get_patient()(alice, patient.id) == patient

    async def test_an_event_never_holds_the_record(self, core: Core, alice: Principal) -> None:
        data = PatientDataFactory.build(notes="takes warfarin")
        await core.container.create_patient()(alice, data)

        (event,) = core.audit_events()
        stored = {str(getattr(event, f.name)) for f in fields(event)}
        assert not stored & {data.name, data.notes, data.email, data.phone, data.address}
        assert [f.name for f in fields(AuditEvent)] == [
            "occurred_at",
            "action",
            "outcome",
            "user_id",
            "resource_type",
            "resource_id",
            "client",
            "request_id",
            "id",
        ]


class FailingCommit(MemoryUnitOfWork):
    async def commit(self) -> None:
        raise RuntimeError("the database went away")


async def test_a_change_that_fails_to_commit_leaves_no_success_event(
    core: Core, alice: Principal
) -> None:
    create = CreatePatient(FailingCommit(core.store), core.auditor)

    with pytest.raises(RuntimeError):
        await create(alice, PatientDataFactory.build())

    assert core.store.tables.patients == {}
    assert summary(core.audit_events()) == [
        (A.PATIENT_CREATE, AuditOutcome.ERROR, alice.user_id, PATIENT, None)
    ]


class TestMappingEvents:
    async def test_every_action_on_a_mapping_is_recorded(
        self, core: Core, alice: Principal
    ) -> None:
        patient = await core.add_patient(alice)
        doctor = await core.add_doctor(alice)
        before = len(core.audit_events())

        mapping = await core.container.assign_doctor()(alice, patient.id, doctor.id)
        with pytest.raises(Conflict):
            await core.container.assign_doctor()(alice, patient.id, doctor.id)
        await core.container.list_mappings()(alice, PageRequest())
        await core.container.list_patient_mappings()(alice, patient.id, PageRequest())
        await core.container.list_patient_doctors()(alice, patient.id, PageRequest())
        await core.container.unassign_doctor()(alice, mapping.id)
        with pytest.raises(NotFound):
            await core.container.unassign_doctor()(alice, mapping.id)

        me = alice.user_id
        assert summary(core.audit_events()[before:]) == [
            (A.MAPPING_CREATE, AuditOutcome.SUCCESS, me, MAPPING, mapping.id),
            (A.MAPPING_CREATE, AuditOutcome.CONFLICT, me, MAPPING, None),
            (A.MAPPING_LIST, AuditOutcome.SUCCESS, me, MAPPING, None),
            (A.MAPPING_LIST_PATIENT, AuditOutcome.SUCCESS, me, PATIENT, patient.id),
            (A.PATIENT_DOCTORS, AuditOutcome.SUCCESS, me, PATIENT, patient.id),
            (A.MAPPING_DELETE, AuditOutcome.SUCCESS, me, MAPPING, mapping.id),
            (A.MAPPING_DELETE, AuditOutcome.NOT_FOUND, me, MAPPING, mapping.id),
        ]


class TestSignInEvents:
    async def test_sign_in_refresh_reuse_and_logout(self, core: Core) -> None:
        user, password = await core.sign_up()
        pair = await core.container.login_user()(user.username, password, HERE)
        with pytest.raises(AuthenticationFailed):
            await core.container.login_user()(user.username, "not the password", HERE)
        with pytest.raises(AuthenticationFailed):
            await core.container.login_user()("nobody-by-that-name", "whatever it is", HERE)
        second = await core.rotating.refresh_tokens()(pair.refresh, HERE)
        with pytest.raises(AuthenticationFailed):
            await core.rotating.refresh_tokens()(pair.refresh, HERE)  # spent: the chain is revoked
        with pytest.raises(AuthenticationFailed):
            await core.rotating.refresh_tokens()("not.a.token", HERE)
        fresh = await core.container.login_user()(user.username, password, HERE)
        await core.container.logout_user()(from_here(user.principal()), fresh.refresh)

        me = user.id
        assert summary(core.audit_events()) == [
            (A.REGISTER, AuditOutcome.SUCCESS, me, USER, me),
            (A.LOGIN, AuditOutcome.SUCCESS, me, USER, me),
            # Who typed the wrong password is not known; which account it was aimed at is.
            (A.LOGIN, AuditOutcome.FAILED, None, USER, me),
            (A.LOGIN, AuditOutcome.FAILED, None, USER, None),
            (A.REFRESH, AuditOutcome.SUCCESS, me, USER, me),
            (A.REFRESH_REUSE, AuditOutcome.FAILED, me, USER, me),
            (A.REFRESH, AuditOutcome.FAILED, None, USER, None),
            (A.LOGIN, AuditOutcome.SUCCESS, me, USER, me),
            (A.LOGOUT, AuditOutcome.SUCCESS, me, USER, me),
        ]
        assert second.refresh is not None
        assert second.refresh not in str(core.audit_events())

    async def test_a_refresh_that_keeps_its_token_is_recorded_each_time(self, core: Core) -> None:
        user, password = await core.sign_up()
        pair = await core.container.login_user()(user.username, password, HERE)
        await core.container.refresh_tokens()(pair.refresh, HERE)
        await core.container.refresh_tokens()(pair.refresh, HERE)

        me = user.id
        assert summary(core.audit_events()[-2:]) == [
            (A.REFRESH, AuditOutcome.SUCCESS, me, USER, me),
            (A.REFRESH, AuditOutcome.SUCCESS, me, USER, me),
        ]

    async def test_account_changes_are_recorded(self, core: Core, admin: Principal) -> None:
        user, password = await core.sign_up()
        await core.container.change_password()(user.principal(), password, "a brand new passphrase")
        with pytest.raises(Forbidden):
            await core.container.set_user_active()(user.principal(), admin.user_id, active=False)
        await core.container.set_user_active()(admin, user.id, active=False)
        await core.container.set_user_active()(admin, user.id, active=True)

        assert summary(core.audit_events()[1:]) == [
            (A.PASSWORD_CHANGE, AuditOutcome.SUCCESS, user.id, USER, user.id),
            (A.USER_DEACTIVATE, AuditOutcome.DENIED, user.id, USER, admin.user_id),
            (A.USER_DEACTIVATE, AuditOutcome.SUCCESS, admin.user_id, USER, user.id),
            (A.USER_ACTIVATE, AuditOutcome.SUCCESS, admin.user_id, USER, user.id),
        ]


class TestListAuditEvents:
    async def test_only_administrators_read_the_trail_and_the_reading_is_recorded(
        self, core: Core, alice: Principal, admin: Principal
    ) -> None:
        await core.add_patient(alice)

        with pytest.raises(Forbidden):
            await core.container.list_audit_events()(alice, AuditQuery(), PageRequest())
        page = await core.container.list_audit_events()(
            admin, AuditQuery(user_id=alice.user_id), PageRequest()
        )

        assert [e.action for e in page.items] == [A.AUDIT_READ, A.PATIENT_CREATE]
        assert page.items[0].outcome is AuditOutcome.DENIED
        mine = await core.container.list_audit_events()(
            admin, AuditQuery(user_id=admin.user_id), PageRequest()
        )
        assert [(e.action, e.outcome) for e in mine.items] == [(A.AUDIT_READ, AuditOutcome.SUCCESS)]

    async def test_an_empty_time_window_is_invalid(self, core: Core, admin: Principal) -> None:
        now = core.clock.now()
        with pytest.raises(InvalidInput) as caught:
            await core.container.list_audit_events()(
                admin, AuditQuery(since=now, until=now), PageRequest()
            )
        assert caught.value.errors[0].field == "until"


def an_event(n: int = 0) -> AuditEvent:
    return AuditEvent(
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        action=A.PATIENT_READ,
        outcome=AuditOutcome.SUCCESS,
        user_id=1,
        resource_type=PATIENT,
        resource_id=n,
        client=None,
        request_id=None,
    )


class FlakyUnitOfWork(MemoryUnitOfWork):
    failures = 0

    async def commit(self) -> None:
        if FlakyUnitOfWork.failures:
            FlakyUnitOfWork.failures -= 1
            raise ConnectionError("the database is restarting")
        await super().commit()


class TestBufferedAuditTrail:
    async def test_a_started_trail_writes_in_the_background_not_per_event(self, core: Core) -> None:
        trail = BufferedAuditTrail(core.uow, interval=0.05)
        trail.start()
        for n in range(3):
            await trail.record(an_event(n))
        assert core.audit_events() == []
        assert trail.pending == 3

        for _ in range(100):
            if core.audit_events():
                break
            await asyncio.sleep(0.01)

        # Written by the writer task, before close (which would write them itself).
        assert [e.resource_id for e in core.audit_events()] == [0, 1, 2]
        assert trail.pending == 0
        await trail.close()

    async def test_flush_and_close_write_what_waits(self, core: Core) -> None:
        trail = BufferedAuditTrail(core.uow, interval=3600)
        trail.start()
        await trail.record(an_event(1))
        await trail.flush()
        await trail.record(an_event(2))
        await trail.close()

        assert [e.resource_id for e in core.audit_events()] == [1, 2]

    async def test_events_survive_a_failed_write_and_keep_their_order(self, core: Core) -> None:
        trail = BufferedAuditTrail(lambda: FlakyUnitOfWork(core.store), interval=3600)
        trail.start()
        await trail.record(an_event(1))
        FlakyUnitOfWork.failures = 1
        with pytest.raises(ConnectionError):
            await trail.flush()
        await trail.record(an_event(2))
        await trail.close()

        assert [e.resource_id for e in core.audit_events()] == [1, 2]

    async def test_a_full_buffer_is_written_by_the_caller(self, core: Core) -> None:
        trail = BufferedAuditTrail(core.uow, interval=3600, max_pending=3)
        trail.start()
        for n in range(3):
            await trail.record(an_event(n))

        assert len(core.audit_events()) == 3
        assert trail.pending == 0
        await trail.close()

    async def test_the_background_writer_retries_after_a_failure(
        self, core: Core, caplog: pytest.LogCaptureFixture
    ) -> None:
        trail = BufferedAuditTrail(lambda: FlakyUnitOfWork(core.store), interval=0.02)
        FlakyUnitOfWork.failures = 3
        trail.start()
        await trail.record(an_event(7))
        for _ in range(200):
            if core.audit_events():
                break
            await asyncio.sleep(0.01)
        await trail.close()

        assert [e.resource_id for e in core.audit_events()] == [7]
        assert FlakyUnitOfWork.failures == 0
        # Three failed attempts, one outage: logged when it began and when it ended.
        logged = [r.getMessage() for r in caplog.records if r.name.endswith("audit_trail")]
        assert logged == [
            "Could not write 1 audit events; will retry",
            "Audit events are being written again",
        ]

    async def test_an_auditor_without_a_started_trail_writes_at_once(self, core: Core) -> None:
        auditor = Auditor(BufferedAuditTrail(core.uow), core.clock)
        async with auditor.scope(A.LOGIN, HERE):
            pass
        assert len(core.audit_events()) == 1
