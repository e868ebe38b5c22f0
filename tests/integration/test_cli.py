"""The `healthcare` command against a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from healthcare.adapters.persistence.sqlalchemy import SqlAlchemyUnitOfWork
from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.domain.entities import User
from healthcare.entrypoints.cli.main import cli


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env from the project; var/ lands here
    values = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "SECRET_KEY": "cli-test-secret-key-long-enough-for-hs256",
        "BCRYPT_ROUNDS": "4",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def stored_user(env: dict[str, str], login: str) -> User:
    """The user as the database holds it, read through the SQL adapter."""

    async def find() -> User | None:
        database = Database(env["DATABASE_URL"])
        try:
            async with SqlAlchemyUnitOfWork(database) as uow:
                return await uow.users.find_by_login(login)
        finally:
            await database.dispose()

    user = asyncio.run(find())
    assert user is not None, f"no user {login!r} was stored"
    return user


def assert_administrator(user: User) -> None:
    assert (user.is_staff, user.is_superuser, user.is_active) == (True, True, True)
    assert user.principal().is_admin


def test_upgrade_then_createsuperuser_by_flags(env: dict[str, str]) -> None:
    runner = CliRunner()
    upgraded = runner.invoke(cli, ["upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    args = [
        "createsuperuser",
        "--username",
        "root",
        "--email",
        "root@example.org",
        "--password",
        "a long admin password",
    ]
    created = runner.invoke(cli, args)
    assert created.exit_code == 0, created.output
    assert "Superuser 'root' created" in created.output
    root = stored_user(env, "root")
    assert (root.username, root.email) == ("root", "root@example.org")
    assert_administrator(root)
    again = runner.invoke(cli, [*args[:2], "ROOT", *args[3:]])
    assert again.exit_code == 1
    assert "already exists" in again.output


def test_createsuperuser_prompts_and_applies_registration_rules(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["upgrade"]).exit_code == 0
    weak = runner.invoke(
        cli, ["createsuperuser"], input="admin\nadmin@example.org\n12345678\n12345678\n"
    )
    assert weak.exit_code == 1
    assert "password: must not be entirely numeric" in weak.output
    ok = runner.invoke(
        cli, ["createsuperuser"], input="admin\nadmin@example.org\nlong enough pw\nlong enough pw\n"
    )
    assert ok.exit_code == 0, ok.output
    assert_administrator(stored_user(env, "admin@example.org"))


def test_downgrade_to_base_and_back(env: dict[str, str]) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["upgrade"]).exit_code == 0
    down = runner.invoke(cli, ["downgrade", "base"])
    assert down.exit_code == 0, down.output
    assert runner.invoke(cli, ["upgrade"]).exit_code == 0


def test_serve_refuses_a_short_secret(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "too short")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code != 0
    assert "at least 32 bytes" in result.output
