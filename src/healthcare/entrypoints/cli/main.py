"""The ``healthcare`` command: serve, migrate, and manage accounts."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys

import click
from granian import Granian
from granian.constants import Interfaces, Loops

from healthcare.adapters.persistence.sqlalchemy import migrations
from healthcare.domain.errors import Conflict, InvalidInput
from healthcare.entrypoints.container import build_container, close_container
from healthcare.entrypoints.logs import configure_logging
from healthcare.entrypoints.settings import (
    Settings,
    SettingsError,
    load_database_url,
    load_settings,
)


@click.group()
def cli() -> None:
    """Healthcare records API."""
    try:
        configure_logging()
    except ValueError as error:  # LOG_FORMAT
        raise click.ClickException(str(error)) from error


@cli.command()
@click.option("--host", help="Address to bind (default: HOST or 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (default: PORT or 8000).")
@click.option("--workers", type=int, help="Worker processes (default: WORKERS or 1).")
def serve(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API with granian (ASGI, uvloop)."""
    settings = _settings(create_secret=True)  # validates, and mints a key on first run
    created = None
    if settings.metrics_enabled:
        # Before granian forks the workers, which inherit the variable (see metrics.py).
        from healthcare.entrypoints.metrics import prepare_multiprocess_directory  # noqa: PLC0415

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


@cli.command()
@click.argument("revision", default="head")
def upgrade(revision: str) -> None:
    """Apply database migrations up to REVISION (default: the newest)."""
    migrations.upgrade(load_database_url(), revision)
    click.echo(f"Database upgraded to {revision}.")


@cli.command()
@click.argument("revision")
def downgrade(revision: str) -> None:
    """Revert database migrations down to REVISION (`base` empties the database)."""
    migrations.downgrade(load_database_url(), revision)
    click.echo(f"Database downgraded to {revision}.")


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
    container = build_container(_settings(create_secret=True))

    async def create() -> int:
        try:
            register = container.register_user()
            user = await register(username, email, password, is_staff=True, is_superuser=True)
            return user.id
        finally:
            await close_container(container)

    try:
        user_id = asyncio.run(create())
    except InvalidInput as error:
        for problem in error.errors:
            click.echo(f"{problem.field}: {problem.message}", err=True)
        sys.exit(1)
    except Conflict as error:
        click.echo(error.message, err=True)
        sys.exit(1)
    click.echo(f"Superuser {username!r} created with id {user_id}.")


def _settings(*, create_secret: bool) -> Settings:
    try:
        return load_settings(create_secret=create_secret)
    except SettingsError as error:
        raise click.ClickException(str(error)) from error


if __name__ == "__main__":
    cli()
