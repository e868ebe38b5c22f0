"""The ``healthcare`` command: serve, migrate, manage accounts and records, import, export.

Data commands act as the administrator named by ``--as USER`` (or HEALTHCARE_AS): the
audit trail records them as that administrator's, from the client ``cli``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Callable

import click
from alembic.util import CommandError
from granian import Granian
from granian.constants import Interfaces, Loops
from sqlalchemy.exc import OperationalError

from healthcare.adapters.persistence.sqlalchemy import migrations
from healthcare.domain.entities import Principal
from healthcare.domain.errors import DomainError, Unavailable
from healthcare.entrypoints.cli.records import GROUPS
from healthcare.entrypoints.cli.runtime import (
    ACTING_ENV,
    Invocation,
    as_admin,
    fail,
    find_user,
    print_json,
    refusal,
    settings,
)
from healthcare.entrypoints.cli.transfer import export_group, import_group
from healthcare.entrypoints.container import Container, build_container, close_container
from healthcare.entrypoints.logs import configure_logging
from healthcare.entrypoints.metrics_directory import prepare_multiprocess_directory
from healthcare.entrypoints.settings import (
    Settings,
    SettingsError,
    load_database_url,
    load_settings,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--as",
    "acting",
    envvar=ACTING_ENV,
    metavar="USER",
    help=f"The administrator (username or email) data commands act as; or {ACTING_ENV}.",
)
@click.pass_context
def cli(ctx: click.Context, acting: str | None) -> None:
    """Healthcare records API: serve it, migrate its database, manage its records."""
    try:
        configure_logging()
    except ValueError as error:  # LOG_FORMAT
        raise click.ClickException(str(error)) from error
    ctx.obj = Invocation(acting)


@cli.command()
@click.option("--host", help="Address to bind (default: HOST or 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (default: PORT or 8000).")
@click.option("--workers", type=int, help="Worker processes (default: WORKERS or 1).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API with granian (ASGI, uvloop)."""
    settings = _settings(create_secret=True)  # validates, and mints a key on first run
    created = None
    if settings.metrics_enabled:
        # Before granian forks the workers, which inherit the variable, and before anything
        # imports prometheus-client, which reads it once (see metrics_directory.py).
        created = prepare_multiprocess_directory(os.environ)
    try:
        _serve(settings, host, port, workers)
    finally:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)


def _serve(settings: Settings, host: str | None, port: int | None, workers: int | None) -> None:
    Granian(
        "healthcare.entrypoints.http.asgi:create_asgi_app",
        factory=True,
        address=host or settings.host,
        port=port if port is not None else settings.port,
        workers=workers or settings.workers,
        interface=Interfaces.ASGI,
        loop=Loops.uvloop,
    ).serve()


@click.group()
def db() -> None:
    """Database migrations: upgrade, downgrade, current, history."""


@click.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Apply database migrations up to REVISION (default: the newest)."""
    _migrate(migrations.upgrade, revision)
    click.echo(f"Database upgraded to {revision}.")


@click.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Revert database migrations down to REVISION (`base` empties the database)."""
    _migrate(migrations.downgrade, revision)
    click.echo(f"Database downgraded to {revision}.")


def _migrate(step: Callable[[str, str], None], revision: str) -> None:
    try:
        step(_database_url(), revision)
    except CommandError as error:
        raise fail(str(error)) from error
    except OperationalError as error:
        raise fail(f"The database cannot be reached: {error.orig}") from error


def _database_url() -> str:
    try:
        return load_database_url()
    except SettingsError as error:
        raise click.ClickException(str(error)) from error


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def current(as_json: bool) -> None:
    """The revision the database is at, and the newest the code knows."""
    try:
        revision = migrations.current(_database_url())
    except OperationalError as error:
        raise fail(f"The database cannot be reached: {error.orig}") from error
    head = migrations.head()
    if as_json:
        print_json({"current": revision, "head": head})
        return
    state = "up to date" if revision == head else f"behind: the newest is {head}"
    click.echo(f"{revision or 'none (never migrated)'} ({state})")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def history(as_json: bool) -> None:
    """Every migration the code knows, newest first."""
    revisions = migrations.history()
    if as_json:
        print_json([{"revision": r, "down_revision": d, "summary": s} for r, d, s in revisions])
        return
    for revision, parent, summary in revisions:
        click.echo(
            f"{parent or 'base'} -> {revision}: {summary.splitlines()[0] if summary else ''}"
        )


db.add_command(upgrade)
db.add_command(downgrade)
cli.add_command(upgrade)  # as before `db` existed
cli.add_command(downgrade)
cli.add_command(db)


@cli.command()
@click.option("--username", prompt=True, help="The administrator's username.")
@click.option("--email", prompt=True, help="The administrator's email address.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The password (prompted, hidden, when omitted).",
)
def createsuperuser(username: str, email: str, password: str) -> None:
    """Create an administrator, held to the same rules as registration."""
    container = build_container(settings())

    async def create() -> int:
        try:
            register = container.register_user()
            user = await register(username, email, password, is_staff=True, is_superuser=True)
            return user.id
        finally:
            await close_container(container)

    try:
        user_id = asyncio.run(create())
    except (DomainError, Unavailable) as error:
        raise refusal(error) from error
    click.echo(f"Superuser {username!r} created with id {user_id}.")


@cli.command()
@click.argument("user")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The new password (prompted, hidden, when omitted).",
)
def changepassword(user: str, password: str) -> None:
    """Set USER's password (username, email or id), held to the password rules; every
    sign-in of USER's ends."""

    async def work(container: Container, principal: Principal) -> str:
        found = await find_user(container, principal, user)
        await container.set_user_password()(principal, found.id, password)
        return found.username

    username = as_admin(work)
    click.echo(f"Password of {username!r} changed.")


for group in GROUPS:
    cli.add_command(group)
cli.add_command(import_group)
cli.add_command(export_group)


def _settings(*, create_secret: bool) -> Settings:
    try:
        return load_settings(create_secret=create_secret)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error


if __name__ == "__main__":
    cli()
