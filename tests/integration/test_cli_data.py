"""The data commands of `healthcare` (users, patients, doctors, mappings, audit, import,
export) through Click's runner, on SQLite and PostgreSQL, and once as a subprocess.

The session's databases are shared, so every test names its own administrator and users.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, NullPool, make_url
from sqlalchemy import create_engine as create_sync_engine

from healthcare.adapters.persistence.sqlalchemy import SqlAlchemyUnitOfWork, upgrade
from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.domain.entities import NewUser, User
from healthcare.entrypoints.cli.main import cli

HEADER = ["name", "age", "gender", "phone", "email", "address", "notes"]
GOOD_ROWS = [
    ["Ada Lovelace", "36", "female", "+44 20 7946 0000", "ada@example.org", "12 St James's Sq", ""],
    ["Alan Turing", "41", "Male", "", "", "", 'Enigma, "bombe"\nand more'],
    ["Grace Hopper", "85", "FEMALE", "", "grace@navy.example", "", ""],
]


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class Cli:
    """The command line on one database, acting as a fresh superuser."""

    def __init__(self, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.url = url
        self.runner = CliRunner()
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("SECRET_KEY", "cli-test-secret-key-long-enough-for-hs256")
        monkeypatch.setenv("BCRYPT_ROUNDS", "4")
        monkeypatch.delenv("HEALTHCARE_AS", raising=False)
        self.admin = unique("root")
        created = self.invoke(
            "createsuperuser",
            "--username",
            self.admin,
            "--email",
            f"{self.admin}@example.org",
            "--password",
            "a long admin password",
            acting=None,
        )
        assert created.exit_code == 0, created.output

    def invoke(self, *args: str, acting: str | None = "", input: str | None = None) -> Result:
        prefix = [] if acting is None else ["--as", acting or self.admin]
        return self.runner.invoke(cli, [*prefix, *args], input=input)

    def json(self, *args: str) -> Any:
        result = self.invoke(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def add_user(self, username: str, *, staff: bool = False) -> User:
        async def add() -> User:
            database = Database(self.url)
            try:
                async with SqlAlchemyUnitOfWork(database) as uow:
                    user = await uow.users.add(
                        NewUser(username, f"{username}@example.org", "not-a-hash", staff)
                    )
                    await uow.commit()
                    return user
            finally:
                await database.dispose()

        return asyncio.run(add())


@pytest.fixture
def run(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.chdir(tmp_path)  # no stray .env; var/ lands here
    return Cli(database_url, monkeypatch)


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def one_line_error(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


# Users ----------------------------------------------------------------------------------


def test_users_list_show_and_changes(run: Cli) -> None:
    tag = unique("u")
    plain = run.add_user(f"{tag}-plain")
    run.add_user(f"{tag}-staff", staff=True)

    listed = run.json("users", "list", "--search", tag.upper())
    assert listed["total"] == 2
    assert [u["username"] for u in listed["items"]] == [f"{tag}-plain", f"{tag}-staff"]
    assert set(listed["items"][0]) == {
        "id", "username", "email", "is_active", "is_staff", "is_superuser", "date_joined",
    }  # fmt: skip
    assert run.json("users", "list", "--search", tag, "--staff")["total"] == 1
    table = run.invoke("users", "list", "--search", tag)
    assert table.exit_code == 0
    assert f"{tag}-plain" in table.stdout and "Users (2 of 2)" in table.stdout
    assert "not-a-hash" not in table.stdout

    shown = run.json("users", "show", plain.username)
    assert (shown["id"], shown["is_active"]) == (plain.id, True)
    assert run.json("users", "show", str(plain.id))["username"] == plain.username
    assert run.json("users", "deactivate", plain.username)["is_active"] is False
    assert run.json("users", "list", "--search", tag, "--inactive")["total"] == 1
    assert run.json("users", "activate", plain.email)["is_active"] is True
    assert run.json("users", "set-staff", plain.username)["is_staff"] is True
    assert run.json("users", "set-staff", plain.username, "--off")["is_staff"] is False
    said = run.invoke("users", "deactivate", plain.username)
    assert said.stdout == f"User {plain.username!r} deactivated.\n"


def test_changepassword(run: Cli) -> None:
    user = run.add_user(unique("pw"))
    weak = run.invoke("changepassword", user.username, "--password", "12345678")
    assert weak.exit_code == 1
    assert one_line_error(weak) == "Error: Invalid input: password: must not be entirely numeric"
    prompted = run.invoke("changepassword", user.username, input="a new passphrase\n" * 2)
    assert prompted.exit_code == 0, prompted.output
    assert f"Password of {user.username!r} changed." in prompted.stdout


def test_acting_administrator_is_required_and_checked(run: Cli) -> None:
    missing = run.invoke("users", "list", acting=None)
    assert missing.exit_code == 2
    assert "--as USER" in missing.stderr
    plain = run.add_user(unique("plain"))
    refused = run.invoke("users", "list", acting=plain.username)
    assert refused.exit_code == 1
    assert one_line_error(refused) == f"Error: {plain.username!r} is not an active administrator"
    nobody = run.invoke("users", "list", acting=unique("nobody"))
    assert nobody.exit_code == 1


def test_missing_records_and_usage_errors(run: Cli) -> None:
    missing_user = run.invoke("users", "show", "nobody-here")
    assert missing_user.exit_code == 1
    assert one_line_error(missing_user) == "Error: User 'nobody-here' was not found"
    missing_patient = run.invoke("patients", "show", "999999999")
    assert (missing_patient.exit_code, one_line_error(missing_patient)) == (
        1,
        "Error: Patient 999999999 was not found",
    )
    assert run.invoke("patients", "show", "abc").exit_code == 2
    assert run.invoke("users", "list", "--limit", "0").exit_code == 2
    assert run.invoke("users", "frobnicate").exit_code == 2
    assert run.invoke("audit", "list", "--since", "yesterday").exit_code == 2
    bad_filter = run.invoke("patients", "list", "--owner", run.admin, "--gender", "robot")
    assert bad_filter.exit_code == 1
    assert "gender: must be one of" in one_line_error(bad_filter)


def test_help_everywhere(run: Cli) -> None:
    commands = [
        [], ["users"], ["users", "list"], ["users", "set-staff"], ["patients", "list"],
        ["patients", "show"], ["doctors", "add"], ["mappings", "assign"], ["audit", "list"],
        ["db"], ["db", "current"], ["db", "history"], ["import", "patients"], ["export"],
        ["export", "mappings"], ["changepassword"], ["serve"], ["upgrade"],
    ]  # fmt: skip
    for command in commands:
        result = run.invoke(*command, "--help", acting=None)
        assert result.exit_code == 0, command
        assert "Usage:" in result.stdout


# Patients, doctors, mappings, audit -------------------------------------------------------


def test_patients_doctors_mappings_and_audit(run: Cli, tmp_path: Path) -> None:
    owner = run.add_user(unique("owner"))
    file = write_csv(tmp_path / "patients.csv", GOOD_ROWS)
    imported = run.json("import", "patients", str(file), "--owner", owner.username)
    assert imported == {"imported": 3, "rejected": []}

    page = run.json("patients", "list", "--owner", owner.username, "--search", "TURING")
    assert page["total"] == 1
    alan = page["items"][0]
    assert (alan["name"], alan["age"], alan["gender"], alan["owner"]) == (
        "Alan Turing", 41, "Male", owner.id,
    )  # fmt: skip
    assert alan["notes"] == 'Enigma, "bombe"\nand more'
    assert alan["phone"] is None
    assert run.json("patients", "list", "--owner", owner.username)["total"] == 3
    assert run.json("patients", "show", str(alan["id"])) == alan

    doctor = run.json("doctors", "add", "--name", "Dr Who", "--specialization", "Time Travel")
    assert (doctor["name"], doctor["specialization"]) == ("Dr Who", "Time Travel")
    bad_doctor = run.invoke("doctors", "add", "--name", " ", "--specialization", "x")
    assert bad_doctor.exit_code == 1
    assert one_line_error(bad_doctor) == "Error: Invalid input: name: must not be blank"
    found = run.json("doctors", "list", "--search", "time trav")
    assert doctor["id"] in [d["id"] for d in found["items"]]

    mapping = run.json("mappings", "assign", str(alan["id"]), str(doctor["id"]))
    assert (mapping["patient_id"], mapping["doctor_id"]) == (alan["id"], doctor["id"])
    again = run.invoke("mappings", "assign", str(alan["id"]), str(doctor["id"]))
    assert (again.exit_code, one_line_error(again)) == (
        1,
        "Error: This doctor is already assigned to this patient",
    )
    listed = run.json("mappings", "list", "--patient", str(alan["id"]))
    assert listed["total"] == 1
    assert listed["items"][0]["doctor_name"] == "Dr Who"
    assert run.invoke("mappings", "list", "--patient", "999999999").exit_code == 1
    # --owner holds a command to that owner's patient: another owner's does not exist.
    mine = ("--patient", str(alan["id"]), "--owner", owner.username)
    assert run.json("mappings", "list", *mine) == listed
    elsewhere = run.invoke("mappings", "list", "--patient", str(alan["id"]), "--owner", run.admin)
    assert one_line_error(elsewhere) == f"Error: Patient {alan['id']} was not found"

    # The audit trail names the administrator, from the command line.
    events = run.json("audit", "list", "--user", run.admin, "--action", "patient.read")
    assert events["total"] == 1
    event = events["items"][0]
    assert (event["outcome"], event["client"], event["resource"]) == (
        "success",
        "cli",
        f"patient {alan['id']}",
    )


def test_import_traces_every_record_in_the_audit_trail(run: Cli, tmp_path: Path) -> None:
    owner = run.add_user(unique("owner"))
    file = write_csv(tmp_path / "patients.csv", GOOD_ROWS)
    assert run.invoke("import", "patients", str(file), "--owner", owner.username).exit_code == 0
    ids = [p["id"] for p in run.json("patients", "list", "--owner", owner.username)["items"]]
    trail = run.json("audit", "list", "--user", run.admin, "--action", "patient.import")
    by_record = sorted(
        int(e["resource"].split()[1]) for e in trail["items"] if " " in e["resource"]
    )
    assert by_record == sorted(ids)
    assert len({e["request_id"] for e in trail["items"]}) == 1  # one import, one request id
    assert trail["total"] == len(ids) + 1  # and the import's own event


# Import with errors --------------------------------------------------------------------------


def test_import_with_a_bad_row_imports_nothing(run: Cli, tmp_path: Path) -> None:
    owner = run.add_user(unique("owner"))
    rows = [*GOOD_ROWS, ["", "abc", "robot", "", "not-an-email", "", ""], GOOD_ROWS[0]]
    file = write_csv(tmp_path / "bad.csv", rows)

    result = run.invoke("import", "patients", str(file), "--owner", owner.username)

    assert result.exit_code == 1
    # The multi-line notes of row 2 (line 3) make the bad row start on line 6.
    assert result.stderr.splitlines()[:4] == [
        "line 6: name: is required",
        "line 6: age: must be a whole number",
        "line 6: gender: must be one of Male, Female, Other, Unknown",
        "line 6: email: must be a valid email address",
    ]
    assert "1 invalid record(s); nothing imported" in one_line_error(result)
    assert run.json("patients", "list", "--owner", owner.username)["total"] == 0


def test_import_jsonl_reports_bad_lines(run: Cli, tmp_path: Path) -> None:
    owner = run.add_user(unique("owner"))
    lines = [
        json.dumps({"name": "Ada", "age": 36, "gender": "Female"}),
        "{not json",
        "",
        json.dumps(["a", "list"]),
        json.dumps({"name": "Bob", "age": 151, "gender": "Male", "shoe_size": 44}),
        json.dumps({"name": "Eve", "age": "7", "gender": "Other", "phone": None}),
    ]
    file = tmp_path / "patients.jsonl"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")

    refused = run.invoke("import", "patients", str(file), "--owner", owner.username, "--json")
    assert refused.exit_code == 1
    assert json.loads(refused.stdout)["rejected"] == [
        {"line": 2, "field": "record", "message": "is not valid JSON"},
        {"line": 4, "field": "record", "message": "is not a JSON object"},
        {"line": 5, "field": "shoe_size", "message": "is not a known field"},
        {"line": 5, "field": "age", "message": "must be between 0 and 150"},
    ]
    assert run.json("patients", "list", "--owner", owner.username)["total"] == 0

    skipped = run.invoke(
        "import", "patients", str(file), "--owner", owner.username, "--skip-invalid"
    )
    assert skipped.exit_code == 0, skipped.output
    assert f"Imported 2 patients for {owner.username!r}, 3 invalid record(s) skipped." in (
        skipped.stdout
    )
    names = [p["name"] for p in run.json("patients", "list", "--owner", owner.username)["items"]]
    assert names == ["Ada", "Eve"]


def test_import_refuses_a_bad_header_or_owner(run: Cli, tmp_path: Path) -> None:
    owner = run.add_user(unique("owner"))
    unknown = write_csv(tmp_path / "h.csv", [["Ada", "3", "Male"]], ["name", "age", "sex"])
    result = run.invoke("import", "patients", str(unknown), "--owner", owner.username)
    assert result.exit_code == 1
    assert one_line_error(result).startswith(
        "Error: line 1: unknown column(s) sex; missing column(s) gender"
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert run.invoke("import", "patients", str(empty), "--owner", owner.username).exit_code == 1
    no_owner = run.invoke("import", "patients", str(unknown), "--owner", unique("nobody"))
    assert no_owner.exit_code == 1
    missing_file = run.invoke("import", "patients", "nowhere.csv", "--owner", owner.username)
    assert missing_file.exit_code == 2


def test_import_doctors_with_skip_invalid(run: Cli, tmp_path: Path) -> None:
    tag = unique("Dr ")
    rows = [[f"{tag} A", "Cardiology"], [f"{tag} B", ""], [f"{tag} C", "Oncology"]]
    file = write_csv(tmp_path / "doctors.csv", rows, ["name", "specialization"])
    assert run.invoke("import", "doctors", str(file)).exit_code == 1
    assert run.json("doctors", "list", "--search", tag)["total"] == 0
    report = run.json("import", "doctors", str(file), "--skip-invalid")
    assert report == {
        "imported": 2,
        "rejected": [{"line": 3, "field": "specialization", "message": "is required"}],
    }
    assert run.json("doctors", "list", "--search", tag)["total"] == 2


# Export ------------------------------------------------------------------------------------


@pytest.fixture
def fresh_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty, migrated database of the same kind."""
    if database_url.startswith("sqlite"):
        url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
        upgrade(url)
        yield url
        return
    admin: Engine = request.getfixturevalue("postgres_admin")
    name = f"{make_url(database_url).database}_fresh"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    create_sync_engine(url, poolclass=NullPool).dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


DATA_COLUMNS = ["name", "age", "gender", "phone", "email", "address", "notes"]


def exported_data(path: Path) -> list[tuple[str, ...]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return sorted(tuple(row[c] for c in DATA_COLUMNS) for row in csv.DictReader(handle))


@pytest.mark.parametrize("file_format", ["csv", "jsonl"])
def test_export_round_trip(
    run: Cli,
    tmp_path: Path,
    fresh_url: str,
    monkeypatch: pytest.MonkeyPatch,
    file_format: str,
) -> None:
    owner = run.add_user(unique("owner"))
    source = write_csv(tmp_path / "patients.csv", GOOD_ROWS * 3)
    assert run.invoke("import", "patients", str(source), "--owner", owner.username).exit_code == 0
    exported = tmp_path / f"export.{file_format}"
    result = run.invoke("export", "patients", "--owner", owner.username, "-o", str(exported))
    assert result.exit_code == 0, result.output
    first = tmp_path / "first.csv"
    assert (
        run.invoke("export", "patients", "--owner", owner.username, "-o", str(first)).exit_code == 0
    )
    assert len(exported_data(first)) == 9

    fresh = Cli(fresh_url, monkeypatch)
    again = fresh.add_user("owner2")
    imported = fresh.invoke("import", "patients", str(exported), "--owner", again.username)
    assert imported.exit_code == 0, imported.output
    second = tmp_path / "second.csv"
    assert fresh.invoke("export", "patients", "-o", str(second)).exit_code == 0
    assert exported_data(second) == exported_data(first)


def test_export_to_stdout_and_mappings(run: Cli, tmp_path: Path) -> None:
    owner = run.add_user(unique("owner"))
    file = write_csv(tmp_path / "patients.csv", GOOD_ROWS[:1])
    assert run.invoke("import", "patients", str(file), "--owner", owner.username).exit_code == 0
    out = run.invoke("export", "patients", "--owner", owner.username, "--format", "jsonl")
    assert out.exit_code == 0
    (record,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert (record["name"], record["age"], record["owner"]) == ("Ada Lovelace", 36, owner.id)
    doctor = run.json("doctors", "add", "--name", "Dr X", "--specialization", "Y")
    run.json("mappings", "assign", str(record["id"]), str(doctor["id"]))
    mappings = run.invoke("export", "mappings", "--owner", owner.username)
    assert mappings.stdout.splitlines()[0] == "id,patient_id,doctor_id,doctor_name,created_at"
    assert f",{record['id']},{doctor['id']},Dr X," in mappings.stdout
    doctors = run.invoke("export", "doctors")
    assert doctors.exit_code == 0 and "Dr X" in doctors.stdout
    assert run.invoke("export", "patients", "--owner", unique("nobody")).exit_code == 1


# Migrations and a real process ---------------------------------------------------------------


def test_db_current_and_history(run: Cli) -> None:
    current = run.json("db", "current")
    assert current["current"] == current["head"]
    history = run.invoke("db", "history", "--json", acting=None)
    revisions = json.loads(history.stdout)
    assert revisions[0]["revision"] == current["head"]
    assert revisions[-1]["down_revision"] is None
    bad = run.invoke("db", "downgrade", "no-such-revision", acting=None)
    assert bad.exit_code == 1


def test_as_a_subprocess(run: Cli, tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / "healthcare"
    environment = {**os.environ, "HEALTHCARE_AS": run.admin}

    def healthcare(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(executable), *args],
            capture_output=True,
            text=True,
            env=environment,
            cwd=tmp_path,
            check=False,
            timeout=60,
        )

    listed = healthcare("users", "list", "--search", run.admin, "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["items"][0]["username"] == run.admin
    missing = healthcare("patients", "show", "999999999")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == "Error: Patient 999999999 was not found"
    assert missing.stdout == ""
    assert healthcare("patients", "show").returncode == 2


def test_progress_shows_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from healthcare.entrypoints.cli import transfer  # noqa: PLC0415 - its private helpers

    with transfer._progress(False, "Importing") as quiet:
        assert quiet is None
    with transfer._progress(True, "Importing") as shown:
        assert shown is not None
        shown(5)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert transfer._interactive(as_json=False)
    assert not transfer._interactive(as_json=True)
