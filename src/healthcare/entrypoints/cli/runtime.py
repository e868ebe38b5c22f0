"""What every data command shares: the container, the acting administrator, errors, output.

Exit codes: 0 on success; 1 with a one-line message on bad input, a missing record, a
refusal or an unreachable database; 2 on a usage error (Click's own).
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from healthcare.application.paging import MAX_LIMIT, Page, PageRequest
from healthcare.domain.audit import Origin
from healthcare.domain.entities import Doctor, Patient, Principal, User
from healthcare.domain.entities import Mapping as DoctorMapping
from healthcare.domain.errors import Conflict, DomainError, InvalidInput, NotFound, Unavailable
from healthcare.entrypoints.container import Container, build_container, close_container
from healthcare.entrypoints.settings import Settings, SettingsError, load_settings

T = TypeVar("T")
CLIENT = "cli"  # the audit trail's client for every event the command line causes
ACTING_ENV = "HEALTHCARE_AS"


@dataclass(frozen=True, slots=True)
class Invocation:
    """The group's options, for its commands (``click.Context.obj``)."""

    acting: str | None


CLI_POOL_SIZE = 2  # one command, one unit of work at a time (and the audit trail's flush)


def settings() -> Settings:
    """The server's settings, with a pool sized for one command: the pool opens all its
    connections at once, and the server's would take eight from PostgreSQL's limit."""
    try:
        loaded = load_settings(create_secret=True)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error
    return replace(loaded, db_pool_size=min(loaded.db_pool_size, CLI_POOL_SIZE))


def fail(message: str) -> click.ClickException:
    """Exit 1 with ``message`` on one line."""
    return click.ClickException(" ".join(message.split()))


def refusal(error: DomainError | Unavailable) -> click.ClickException:
    """Exit 1 with the one line every command gives for a refusal: each bad field named
    beside its message (the API's problem ``errors``, the admin's message by the field)."""
    if isinstance(error, InvalidInput):
        return fail(f"Invalid input: {error.message}")
    if isinstance(error, Conflict) and error.field:
        return fail(f"{error.field}: {error.message}")
    return fail(error.message)


def run(work: Callable[[Container], Awaitable[T]]) -> T:
    """``work`` on a fresh container, closed afterwards; domain errors exit 1."""
    container = build_container(settings())

    async def main() -> T:
        try:
            return await work(container)
        finally:
            await close_container(container)

    try:
        return asyncio.run(main())
    except (DomainError, Unavailable) as error:
        raise refusal(error) from error


def as_admin(work: Callable[[Container, Principal], Awaitable[T]]) -> T:
    """``work`` done by the administrator named by ``--as`` (or HEALTHCARE_AS)."""
    acting = click.get_current_context().find_object(Invocation)
    name = acting.acting if acting is not None else None
    if not name:
        raise click.UsageError(
            f"Name the acting administrator with --as USER (or {ACTING_ENV}=USER)"
        )
    origin = Origin(client=CLIENT, request_id=f"cli-{uuid.uuid4().hex}")

    async def acting_work(container: Container) -> T:
        principal = await container.identify_administrator()(name, origin)
        return await work(container, principal)

    return run(acting_work)


async def find_user(container: Container, principal: Principal, login: str) -> User:
    """A user by username or email; or, failing that, by id when ``login`` is a number."""
    get = container.get_user()
    try:
        return await get.login(principal, login)
    except NotFound:
        if not login.isdigit():
            raise
    return await get(principal, int(login))


owner_option = click.option(
    "--owner",
    help="Only if the patient is this user's (username, email or id); any owner's without it.",
)


async def owner_id_of(container: Container, principal: Principal, owner: str | None) -> int | None:
    """The id of the owner ``--owner`` names, for the use cases' ``owner_id``."""
    return None if owner is None else (await find_user(container, principal, owner)).id


def page_options(command: Callable[..., Any]) -> Callable[..., Any]:
    command = click.option(
        "--offset", type=click.IntRange(min=0), default=0, show_default=True, help="Skip this many."
    )(command)
    return click.option(
        "--limit",
        type=click.IntRange(1, MAX_LIMIT),
        default=100,
        show_default=True,
        help="At most this many.",
    )(command)


def page_request(limit: int, offset: int) -> PageRequest:
    return PageRequest(limit=limit, offset=offset)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")


class IsoDateTime(click.ParamType[Any, datetime]):
    """An ISO 8601 date or time; without a zone, UTC."""

    name = "datetime"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or time", param, ctx)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# Records as plain data: what --json prints, and what the tables show. -------------------


def user_fields(user: User) -> dict[str, Any]:
    """Never the password hash."""
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "date_joined": user.date_joined.isoformat(),
    }


def patient_fields(patient: Patient) -> dict[str, Any]:
    return {
        "id": patient.id,
        "owner": patient.created_by,
        "name": patient.name,
        "age": patient.age,
        "gender": patient.gender.value,
        "phone": patient.phone,
        "email": patient.email,
        "address": patient.address,
        "notes": patient.notes,
        "created_at": patient.created_at.isoformat(),
        "updated_at": patient.updated_at.isoformat(),
        "version": patient.version,
    }


def doctor_fields(doctor: Doctor) -> dict[str, Any]:
    return {
        "id": doctor.id,
        "created_by": doctor.created_by,
        "name": doctor.name,
        "specialization": doctor.specialization,
        "email": doctor.email,
        "phone": doctor.phone,
        "created_at": doctor.created_at.isoformat(),
        "updated_at": doctor.updated_at.isoformat(),
        "version": doctor.version,
    }


def mapping_fields(mapping: DoctorMapping) -> dict[str, Any]:
    return {
        "id": mapping.id,
        "patient_id": mapping.patient_id,
        "doctor_id": mapping.doctor.id,
        "doctor_name": mapping.doctor.name,
        "created_at": mapping.created_at.isoformat(),
    }


# Output ---------------------------------------------------------------------------------


def print_json(value: object) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, default=str))


PIPED_WIDTH = 200  # a table's width when not on a terminal: whole values, for grep


def console() -> Console:
    # Click's runner swaps sys.stdout; a console made now writes where click.echo does.
    width = None if sys.stdout.isatty() else PIPED_WIDTH
    return Console(file=sys.stdout, width=width, highlight=False)


def show_page(
    page: Page[T],
    fields: Callable[[T], dict[str, Any]],
    columns: Sequence[str],
    *,
    as_json: bool,
    title: str,
) -> None:
    """A page as ``{"total": n, "items": [...]}`` or as a table with its total."""
    rows = [fields(item) for item in page.items]
    if as_json:
        print_json({"total": page.total, "items": rows})
        return
    table = Table(title=f"{title} ({len(rows)} of {page.total})")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row[column]) for column in columns))
    console().print(table)


def show_record(fields: Mapping[str, Any], *, as_json: bool, title: str) -> None:
    if as_json:
        print_json(dict(fields))
        return
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for name, value in fields.items():
        table.add_row(name, _cell(value))
    console().print(table)


def _cell(value: object) -> Text:
    """As it is: a name with brackets in it is not markup."""
    return Text("" if value is None else str(value))


def say(message: str, fields: Mapping[str, Any], *, as_json: bool) -> None:
    """A change's result: the record as JSON, or one line."""
    if as_json:
        print_json(dict(fields))
    else:
        click.echo(message)


def echo_lines(lines: Iterable[str]) -> None:
    for line in lines:
        click.echo(line, err=True)
