"""The same rules everywhere: one table of cases, run through the HTTP API, the admin's forms
and the command line, each reporting the same outcome in its own terms.

Each entrypoint has a driver with one interface: it does a case's operation and reports
what the entrypoint said (the API: status, the problem's field and message; the admin: the
page's status, the field its message stands by, or the form's or error page's message; the
command line: the exit code and its one line, field and message). The test compares that
with the case's expected outcome, said in the driver's terms: the very same field and
message text everywhere. The API acts as the owner of the scene's patients; the admin and
the command line act as an administrator naming that owner (the admin's patient pages, the
command line's ``--owner``), which is how a patient of another owner stays out of reach in
each. Whatever the outcome, the records change exactly when the case says they do.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from click.testing import CliRunner, Result
from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcare.application.paging import PageRequest
from healthcare.domain.entities import Principal
from healthcare.entrypoints.cli.main import cli
from healthcare.entrypoints.container import Container
from healthcare.entrypoints.settings import Settings
from tests.e2e.conftest import (
    PASSWORD,
    Account,
    AdminBrowser,
    create_doctor,
    create_patient,
    sign_up,
    unique,
)

Client = AsyncTestClient[Litestar]
MISSING_ID = 999_999_999


class Kind(Enum):
    CREATED = "created"  # a write that took effect
    FOUND = "found"  # a read that showed the record
    INVALID = "invalid"  # a field breaks a rule
    CONFLICT = "conflict"  # a uniqueness rule (the API's 409)
    MISSING = "missing"  # no such record, or not for this owner (the API's 404)


class Operation(Enum):
    REGISTER = "open an account"
    ADD_DOCTOR = "add a doctor"
    ASSIGN = "assign a doctor to a patient"
    READ_PATIENT = "read a patient"


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    field: str | None = None
    message: str | None = None  # a refusal's message; a read's: the name it shows


@dataclass(frozen=True)
class Case:
    name: str
    operation: Operation
    given: Mapping[str, str]  # "{...}" names the scene's values
    expect: Outcome


ACCOUNT = {"username": "{new}", "email": "{new}@example.org", "password": PASSWORD}
DOCTOR = {"name": "Dr {new}", "specialization": "Cardiology"}
REGISTER, ADD_DOCTOR = Operation.REGISTER, Operation.ADD_DOCTOR
ASSIGN, READ_PATIENT = Operation.ASSIGN, Operation.READ_PATIENT
CREATED, FOUND, INVALID, CONFLICT, MISSING = Kind

CASES = [
    Case("valid account", REGISTER, ACCOUNT, Outcome(CREATED)),
    Case(
        "short password",
        REGISTER,
        {**ACCOUNT, "password": "short"},
        Outcome(INVALID, "password", "must be at least 8 characters"),
    ),
    Case(
        "invalid email",
        REGISTER,
        {**ACCOUNT, "email": "not-an-address"},
        Outcome(INVALID, "email", "must be a valid email address"),
    ),
    Case(
        "username taken",
        REGISTER,
        {**ACCOUNT, "username": "{owner}"},
        Outcome(CONFLICT, "username", "A user with that username already exists"),
    ),
    Case(
        "email taken",
        REGISTER,
        {**ACCOUNT, "email": "{owner_email}"},
        Outcome(CONFLICT, "email", "A user with that email already exists"),
    ),
    Case("valid doctor", ADD_DOCTOR, DOCTOR, Outcome(CREATED)),
    Case(
        "blank doctor name",
        ADD_DOCTOR,
        {**DOCTOR, "name": " "},
        Outcome(INVALID, "name", "must not be blank"),
    ),
    Case(
        "invalid doctor email",
        ADD_DOCTOR,
        {**DOCTOR, "email": "nope"},
        Outcome(INVALID, "email", "must be a valid email address"),
    ),
    Case("valid mapping", ASSIGN, {"patient": "{mine}", "doctor": "{doctor}"}, Outcome(CREATED)),
    Case(
        "mapping exists",
        ASSIGN,
        {"patient": "{mine}", "doctor": "{assigned}"},
        Outcome(CONFLICT, None, "This doctor is already assigned to this patient"),
    ),
    Case(
        "foreign patient mapped",
        ASSIGN,
        {"patient": "{theirs}", "doctor": "{doctor}"},
        Outcome(MISSING, None, "Patient {theirs} was not found"),
    ),
    Case(
        "missing patient mapped",
        ASSIGN,
        {"patient": "{missing}", "doctor": "{doctor}"},
        Outcome(MISSING, None, "Patient {missing} was not found"),
    ),
    Case(
        "own patient read", READ_PATIENT, {"patient": "{mine}"}, Outcome(FOUND, None, "{mine_name}")
    ),
    Case(
        "foreign patient read",
        READ_PATIENT,
        {"patient": "{theirs}"},
        Outcome(MISSING, None, "Patient {theirs} was not found"),
    ),
    Case(
        "missing patient read",
        READ_PATIENT,
        {"patient": "{missing}"},
        Outcome(MISSING, None, "Patient {missing} was not found"),
    ),
]


@dataclass(frozen=True)
class Scene:
    """The records a case acts on: the owner's patient (with one doctor assigned already),
    another owner's patient, a doctor, and the administrator the admin and CLI act as."""

    owner: Account
    admin: Account
    values: Mapping[str, str]

    def fill(self, template: str) -> str:
        return template.format(**self.values)


@dataclass(frozen=True)
class Reported:
    """What an entrypoint said: its own status (HTTP status, exit code), the field it
    named, and its message."""

    status: int
    field: str | None
    message: str | None


class Driver(ABC):
    """One entrypoint, driven through each operation of the table."""

    signals: ClassVar[Mapping[Kind, int]]  # how this entrypoint says each kind of outcome

    async def act(self, operation: Operation, scene: Scene, given: Mapping[str, str]) -> Reported:
        match operation:
            case Operation.REGISTER:
                return await self.register(scene, given)
            case Operation.ADD_DOCTOR:
                return await self.add_doctor(scene, given)
            case Operation.ASSIGN:
                return await self.assign(scene, given["patient"], given["doctor"])
            case Operation.READ_PATIENT:
                return await self.read_patient(scene, given["patient"])

    @abstractmethod
    async def register(self, scene: Scene, given: Mapping[str, str]) -> Reported: ...

    @abstractmethod
    async def add_doctor(self, scene: Scene, given: Mapping[str, str]) -> Reported: ...

    @abstractmethod
    async def assign(self, scene: Scene, patient: str, doctor: str) -> Reported: ...

    @abstractmethod
    async def read_patient(self, scene: Scene, patient: str) -> Reported: ...


class Api(Driver):
    """The HTTP API, as the owner (registration is anonymous)."""

    signals = {CREATED: 201, FOUND: 200, INVALID: 400, CONFLICT: 409, MISSING: 404}

    def __init__(self, client: Client) -> None:
        self.client = client

    async def register(self, scene: Scene, given: Mapping[str, str]) -> Reported:
        return self._reported(await self.client.post("/api/auth/register/", json=dict(given)))

    async def add_doctor(self, scene: Scene, given: Mapping[str, str]) -> Reported:
        response = await self.client.post(
            "/api/doctors/", json=dict(given), headers=scene.owner.headers
        )
        return self._reported(response)

    async def assign(self, scene: Scene, patient: str, doctor: str) -> Reported:
        body = {"patient": int(patient), "doctor": int(doctor)}
        response = await self.client.post("/api/mappings/", json=body, headers=scene.owner.headers)
        return self._reported(response)

    async def read_patient(self, scene: Scene, patient: str) -> Reported:
        response = await self.client.get(f"/api/patients/{patient}/", headers=scene.owner.headers)
        return self._reported(response, shows="name")

    @staticmethod
    def _reported(response: httpx.Response, *, shows: str | None = None) -> Reported:
        body = response.json()
        if response.is_success:
            return Reported(response.status_code, None, None if shows is None else body[shows])
        assert response.headers["content-type"].startswith("application/problem+json")
        errors = body.get("errors") or []
        if len(errors) == 1:
            return Reported(response.status_code, errors[0]["field"], errors[0]["message"])
        return Reported(response.status_code, None, body["detail"])


_FIELD_ERRORS = re.compile(
    r'<div class="field invalid">.*?name="([^"]+)".*?<ul class="errors">(.*?)</ul>', re.S
)
_ITEM = re.compile(r"<li>(.*?)</li>", re.S)
_NOTICE = re.compile(r'<div class="notice bad"[^>]*>(.*?)</div>', re.S)
_ERROR_PAGE = re.compile(r'<div class="card"><h1>[^<]*</h1><p>(.*?)</p>', re.S)
_NAME_VALUE = re.compile(r'name="name" type="text" value="([^"]*)"')
FIELDS_MARKED = "Please correct the fields marked below."  # the admin's notice over field errors


class AdminSite(Driver):
    """The admin's forms, signed in as the administrator, acting for the owner."""

    signals = {CREATED: 303, FOUND: 200, INVALID: 400, CONFLICT: 400, MISSING: 404}

    def __init__(self, browser: AdminBrowser) -> None:
        self.browser = browser

    async def register(self, scene: Scene, given: Mapping[str, str]) -> Reported:
        return self._reported(await self.browser.post("/admin/users/new", dict(given)))

    async def add_doctor(self, scene: Scene, given: Mapping[str, str]) -> Reported:
        return self._reported(await self.browser.post("/admin/doctors/new", dict(given)))

    async def assign(self, scene: Scene, patient: str, doctor: str) -> Reported:
        path = f"/admin/patients/{scene.owner.id}/{patient}/doctors"
        return self._reported(await self.browser.post(path, {"doctor": doctor}))

    async def read_patient(self, scene: Scene, patient: str) -> Reported:
        page = await self.browser.get(f"/admin/patients/{scene.owner.id}/{patient}")
        if page.status_code == 200:
            shown = _NAME_VALUE.search(page.text)
            return Reported(200, None, None if shown is None else html.unescape(shown.group(1)))
        return self._reported(page)

    @staticmethod
    def _reported(page: httpx.Response) -> Reported:
        if page.status_code == 303:
            return Reported(303, None, None)
        text = page.text
        by_field = [
            (field, html.unescape(item.strip()))
            for field, items in _FIELD_ERRORS.findall(text)
            for item in _ITEM.findall(items)
        ]
        notices = [html.unescape(n.strip()) for n in _NOTICE.findall(text)]
        notices = [n for n in notices if n != FIELDS_MARKED]
        if len(by_field) == 1 and not notices:
            return Reported(page.status_code, *by_field[0])
        if page_error := _ERROR_PAGE.search(text):
            notices.append(html.unescape(page_error.group(1).strip()))
        if len(notices) == 1 and not by_field:
            return Reported(page.status_code, None, notices[0])
        return Reported(page.status_code, None, f"unclear: {by_field} {notices}")


class CommandLine(Driver):
    """The command line through Click's runner, as the administrator, naming the owner."""

    signals = {CREATED: 0, FOUND: 0, INVALID: 1, CONFLICT: 1, MISSING: 1}

    def __init__(self, admin: Account) -> None:
        self.runner = CliRunner()
        self.acting = admin.username

    async def _run(self, *args: str, acting: bool = True) -> Result:
        # The command runs its own event loop (asyncio.run), so not on the test's.
        prefix = ["--as", self.acting] if acting else []
        return await asyncio.to_thread(self.runner.invoke, cli, [*prefix, *args])

    async def register(self, scene: Scene, given: Mapping[str, str]) -> Reported:
        options = [item for name, value in given.items() for item in (f"--{name}", value)]
        return self._reported(await self._run("createsuperuser", *options, acting=False))

    async def add_doctor(self, scene: Scene, given: Mapping[str, str]) -> Reported:
        options = [item for name, value in given.items() for item in (f"--{name}", value)]
        return self._reported(await self._run("doctors", "add", *options))

    async def assign(self, scene: Scene, patient: str, doctor: str) -> Reported:
        owner = ("--owner", scene.owner.username)
        return self._reported(await self._run("mappings", "assign", patient, doctor, *owner))

    async def read_patient(self, scene: Scene, patient: str) -> Reported:
        owner = ("--owner", scene.owner.username)
        result = await self._run("patients", "show", patient, *owner, "--json")
        if result.exit_code == 0:
            return Reported(0, None, json.loads(result.stdout)["name"])
        return self._reported(result)

    @staticmethod
    def _reported(result: Result) -> Reported:
        if result.exit_code == 0:
            return Reported(0, None, None)
        lines = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        if len(lines) != 1:
            return Reported(result.exit_code, None, f"not one line: {result.output!r}")
        said = lines[0].removeprefix("Error: ").removeprefix("Invalid input: ")
        field, colon, message = said.partition(": ")
        if colon and field.isidentifier():
            return Reported(result.exit_code, field, message)
        return Reported(result.exit_code, None, said)


@pytest.fixture
async def scene(client: Client, admin: Account) -> Scene:
    owner, other = await sign_up(client), await sign_up(client)
    mine = await create_patient(client, owner, name=unique("Mine"))
    theirs = await create_patient(client, other, name=unique("Theirs"))
    doctor = await create_doctor(client, owner, name=unique("Dr"))
    assigned = await create_doctor(client, owner, name=unique("Dr"))
    mapped = await client.post(
        "/api/mappings/",
        json={"patient": mine["id"], "doctor": assigned["id"]},
        headers=owner.headers,
    )
    assert mapped.status_code == 201, mapped.text
    values = {
        "new": unique("new"),
        "owner": owner.username,
        "owner_email": owner.email,
        "mine": str(mine["id"]),
        "mine_name": mine["name"],
        "theirs": str(theirs["id"]),
        "missing": str(MISSING_ID),
        "doctor": str(doctor["id"]),
        "assigned": str(assigned["id"]),
    }
    return Scene(owner, admin, values)


@pytest.fixture(params=["api", "admin", "cli"])
async def driver(
    request: pytest.FixtureRequest,
    client: Client,
    scene: Scene,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> AsyncIterator[Driver]:
    if request.param == "api":
        yield Api(client)
    elif request.param == "admin":
        client.cookies.clear()
        browser = AdminBrowser(client)
        signed_in = await browser.sign_in(scene.admin.username)
        assert signed_in.status_code == 303, signed_in.text
        yield AdminSite(browser)
        client.cookies.clear()
    else:
        monkeypatch.chdir(tmp_path)  # no stray .env
        monkeypatch.setenv("DATABASE_URL", settings.database_url)
        monkeypatch.setenv("SECRET_KEY", settings.secret_key)
        monkeypatch.setenv("BCRYPT_ROUNDS", str(settings.bcrypt_rounds))
        monkeypatch.delenv("HEALTHCARE_AS", raising=False)
        yield CommandLine(scene.admin)


async def census(container: Container, scene: Scene) -> tuple[int, ...]:
    """How many accounts, doctors and mappings of the scene's patients there are."""
    admin = Principal(scene.admin.id, is_admin=True)
    one = PageRequest(1, 0)
    users = await container.list_users()(admin, one)
    doctors = await container.list_doctors()(admin, one)
    mappings = [
        await container.list_patient_mappings()(admin, int(scene.values[p]), one, every_owner=True)
        for p in ("mine", "theirs")
    ]
    return (users.total, doctors.total, *(m.total for m in mappings))


@pytest.mark.parametrize("case", CASES, ids=[case.name.replace(" ", "-") for case in CASES])
async def test_every_entrypoint_reports_the_same_outcome(
    case: Case, driver: Driver, scene: Scene, container: Container
) -> None:
    given = {name: scene.fill(value) for name, value in case.given.items()}
    expected = Reported(
        driver.signals[case.expect.kind],
        case.expect.field,
        None if case.expect.message is None else scene.fill(case.expect.message),
    )
    before = await census(container, scene)

    reported = await driver.act(case.operation, scene, given)

    assert reported == expected, f"{type(driver).__name__}: {case.operation.value}"
    after = await census(container, scene)
    assert (after != before) == (case.expect.kind is CREATED), (before, after)
