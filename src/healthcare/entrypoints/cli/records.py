"""Commands over accounts, patients, doctors, mappings and the audit trail.

Each is one use case (or two: a user named by username is looked up first), done by the
administrator named by ``--as``.
"""

from __future__ import annotations

from datetime import datetime

import click

from healthcare.application.paging import PageRequest
from healthcare.domain.audit import AuditAction, AuditOutcome, AuditQuery, ResourceType
from healthcare.domain.entities import DoctorData, Principal
from healthcare.domain.listing import doctor_filter, patient_filter, user_filter
from healthcare.entrypoints.cli.runtime import (
    IsoDateTime,
    as_admin,
    doctor_fields,
    find_user,
    json_option,
    mapping_fields,
    owner_id_of,
    owner_option,
    page_options,
    page_request,
    patient_fields,
    say,
    show_page,
    show_record,
    user_fields,
)
from healthcare.entrypoints.container import Container

USER_COLUMNS = ("id", "username", "email", "is_active", "is_staff", "is_superuser")
PATIENT_COLUMNS = ("id", "owner", "name", "age", "gender", "phone", "email")
DOCTOR_COLUMNS = ("id", "name", "specialization", "email", "phone")
MAPPING_COLUMNS = ("id", "patient_id", "doctor_id", "doctor_name", "created_at")
AUDIT_COLUMNS = ("occurred_at", "action", "outcome", "user_id", "resource", "client")


# Users ----------------------------------------------------------------------------------


@click.group()
def users() -> None:
    """List, show and change accounts."""


@users.command("list")
@click.option("--search", help="Part of the username or email (any letter case).")
@click.option("--staff/--no-staff", default=None, help="Only staff, or only non-staff.")
@click.option("--active/--inactive", default=None, help="Only active, or only inactive.")
@page_options
@json_option
def list_users(
    *,
    search: str | None,
    staff: bool | None,
    active: bool | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List accounts, by id."""

    async def work(container: Container, principal: Principal) -> None:
        where = user_filter(search=search, is_staff=staff, is_active=active)
        page = await container.list_users()(principal, page_request(limit, offset), where)
        show_page(page, user_fields, USER_COLUMNS, as_json=as_json, title="Users")

    as_admin(work)


@users.command("show")
@click.argument("user")
@json_option
def show_user(user: str, as_json: bool) -> None:
    """Show the account USER (username, email or id)."""

    async def work(container: Container, principal: Principal) -> None:
        found = await find_user(container, principal, user)
        show_record(user_fields(found), as_json=as_json, title=f"User {found.username}")

    as_admin(work)


def _set_active(user: str, active: bool, as_json: bool) -> None:
    async def work(container: Container, principal: Principal) -> None:
        found = await find_user(container, principal, user)
        changed = await container.set_user_active()(principal, found.id, active)
        state = "activated" if active else "deactivated"
        say(f"User {changed.username!r} {state}.", user_fields(changed), as_json=as_json)

    as_admin(work)


@users.command("activate")
@click.argument("user")
@json_option
def activate(user: str, as_json: bool) -> None:
    """Let USER sign in again."""
    _set_active(user, True, as_json)


@users.command("deactivate")
@click.argument("user")
@json_option
def deactivate(user: str, as_json: bool) -> None:
    """Stop USER signing in; their refresh tokens are revoked at once."""
    _set_active(user, False, as_json)


@users.command("set-staff")
@click.argument("user")
@click.option("--on/--off", "staff", default=True, show_default=True, help="Grant or withdraw.")
@json_option
def set_staff(user: str, staff: bool, as_json: bool) -> None:
    """Grant USER staff status (the admin interface), or withdraw it with --off."""

    async def work(container: Container, principal: Principal) -> None:
        found = await find_user(container, principal, user)
        changed = await container.set_user_staff()(principal, found.id, staff)
        state = "is now staff" if staff else "is no longer staff"
        say(f"User {changed.username!r} {state}.", user_fields(changed), as_json=as_json)

    as_admin(work)


# Patients -------------------------------------------------------------------------------


@click.group()
def patients() -> None:
    """List and show any owner's patients."""


@patients.command("list")
@click.option("--owner", required=True, help="The owner's username, email or id.")
@click.option("--search", help="Part of the name (ignoring case and accents).")
@click.option("--gender", help="Male, Female, Other or Unknown.")
@click.option("--ordering", help="Fields among name, age, created_at, updated_at, id; -desc.")
@page_options
@json_option
def list_patients(
    *,
    owner: str,
    search: str | None,
    gender: str | None,
    ordering: str | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List the patients of --owner."""

    async def work(container: Container, principal: Principal) -> None:
        where = patient_filter(search=search, gender=gender, ordering=ordering)
        owner_user = await find_user(container, principal, owner)
        page = await container.list_patients()(
            principal, page_request(limit, offset), where, owner_id=owner_user.id
        )
        title = f"Patients of {owner_user.username}"
        show_page(page, patient_fields, PATIENT_COLUMNS, as_json=as_json, title=title)

    as_admin(work)


@patients.command("show")
@click.argument("patient_id", type=click.IntRange(min=1))
@owner_option
@json_option
def show_patient(patient_id: int, owner: str | None, as_json: bool) -> None:
    """Show the patient PATIENT_ID, whoever owns it (audited as a read)."""

    async def work(container: Container, principal: Principal) -> None:
        owner_id = await owner_id_of(container, principal, owner)
        get_patient = container.get_patient()
        patient = await get_patient(principal, patient_id, owner_id=owner_id, every_owner=True)
        show_record(patient_fields(patient), as_json=as_json, title=f"Patient {patient.id}")

    as_admin(work)


# Doctors --------------------------------------------------------------------------------


@click.group()
def doctors() -> None:
    """List and add doctors."""


@doctors.command("list")
@click.option("--search", help="Part of the name or specialization.")
@click.option("--specialization", help="Exactly this specialization (any letter case).")
@page_options
@json_option
def list_doctors(
    *, search: str | None, specialization: str | None, limit: int, offset: int, as_json: bool
) -> None:
    """List the doctor directory."""

    async def work(container: Container, principal: Principal) -> None:
        where = doctor_filter(search=search, specialization=specialization)
        page = await container.list_doctors()(principal, page_request(limit, offset), where)
        show_page(page, doctor_fields, DOCTOR_COLUMNS, as_json=as_json, title="Doctors")

    as_admin(work)


@doctors.command("add")
@click.option("--name", required=True)
@click.option("--specialization", required=True)
@click.option("--email")
@click.option("--phone")
@json_option
def add_doctor(
    *, name: str, specialization: str, email: str | None, phone: str | None, as_json: bool
) -> None:
    """Add a doctor to the directory, held to the API's rules."""

    async def work(container: Container, principal: Principal) -> None:
        data = DoctorData(name, specialization, email, phone)
        doctor = await container.create_doctor()(principal, data)
        say(
            f"Doctor {doctor.name!r} added with id {doctor.id}.",
            doctor_fields(doctor),
            as_json=as_json,
        )

    as_admin(work)


# Mappings -------------------------------------------------------------------------------


@click.group()
def mappings() -> None:
    """List and assign doctors of patients."""


@mappings.command("list")
@click.option("--patient", "patient_id", type=click.IntRange(min=1), required=True)
@owner_option
@page_options
@json_option
def list_mappings(
    patient_id: int, owner: str | None, limit: int, offset: int, as_json: bool
) -> None:
    """List the doctors assigned to --patient."""

    async def work(container: Container, principal: Principal) -> None:
        owner_id = await owner_id_of(container, principal, owner)
        page = await container.list_patient_mappings()(
            principal,
            patient_id,
            page_request(limit, offset),
            owner_id=owner_id,
            every_owner=True,
        )
        title = f"Doctors of patient {patient_id}"
        show_page(page, mapping_fields, MAPPING_COLUMNS, as_json=as_json, title=title)

    as_admin(work)


@mappings.command("assign")
@click.argument("patient_id", type=click.IntRange(min=1))
@click.argument("doctor_id", type=click.IntRange(min=1))
@owner_option
@json_option
def assign(patient_id: int, doctor_id: int, owner: str | None, as_json: bool) -> None:
    """Assign the doctor DOCTOR_ID to the patient PATIENT_ID."""

    async def work(container: Container, principal: Principal) -> None:
        owner_id = await owner_id_of(container, principal, owner)
        mapping = await container.assign_doctor()(
            principal, patient_id, doctor_id, owner_id=owner_id, every_owner=True
        )
        message = f"Doctor {doctor_id} assigned to patient {patient_id} (mapping {mapping.id})."
        say(message, mapping_fields(mapping), as_json=as_json)

    as_admin(work)


# Audit trail ----------------------------------------------------------------------------


@click.group()
def audit() -> None:
    """Read the audit trail."""


@audit.command("list")
@click.option("--user", help="Who acted: username, email or id.")
@click.option("--action", type=click.Choice([a.value for a in AuditAction]))
@click.option("--outcome", type=click.Choice([o.value for o in AuditOutcome]))
@click.option("--resource", type=click.Choice([r.value for r in ResourceType]))
@click.option("--resource-id", type=click.IntRange(min=1))
@click.option("--since", type=IsoDateTime(), help="From this time (ISO 8601; UTC if no zone).")
@click.option("--until", type=IsoDateTime(), help="Before this time.")
@page_options
@json_option
def list_audit(
    *,
    user: str | None,
    action: str | None,
    outcome: str | None,
    resource: str | None,
    resource_id: int | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
    as_json: bool,
) -> None:
    """List audit events, newest first."""

    async def work(container: Container, principal: Principal) -> None:
        user_id = None if user is None else (await find_user(container, principal, user)).id
        query = AuditQuery(
            user_id=user_id,
            resource_type=None if resource is None else ResourceType(resource),
            resource_id=resource_id,
            action=None if action is None else AuditAction(action),
            outcome=None if outcome is None else AuditOutcome(outcome),
            since=since,
            until=until,
        )
        page = await container.list_audit_events()(principal, query, PageRequest(limit, offset))
        show_page(
            page,
            lambda e: {
                "id": e.id,
                "occurred_at": e.occurred_at.isoformat(),
                "action": e.action.value,
                "outcome": e.outcome.value,
                "user_id": e.user_id,
                "resource": None
                if e.resource_type is None
                else f"{e.resource_type.value} {e.resource_id or ''}".strip(),
                "client": e.client,
                "request_id": e.request_id,
            },
            AUDIT_COLUMNS,
            as_json=as_json,
            title="Audit events",
        )

    as_admin(work)


GROUPS = (users, patients, doctors, mappings, audit)
