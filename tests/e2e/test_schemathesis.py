"""Schemathesis against the app's own OpenAPI document, in process; then what it cannot send.

``test_api`` gives every operation in the document positive and negative data (generation
mode "all") from schemathesis's examples, coverage and fuzzing phases (its stateful phase is
a different kind of test), and holds every response to five checks: no 5xx, and a status
code, content type, headers and body that the document declares for that operation.

It runs once, on SQLite: requests go through schemathesis's ASGI transport (no server) to an
app on a migrated SQLite file of its own, as a freshly registered user who owns patient 1,
doctor 1 and mapping 1, so the boundary ids the coverage phase favours reach real rows. The
run is derandomised, so every run sends the same cases. For a deeper run by hand:

    SCHEMATHESIS_MAX_EXAMPLES=300 \\
    SCHEMATHESIS_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/<fresh db> \\
    .venv/bin/pytest tests/e2e/test_schemathesis.py

The tests after it pin what such runs and hand-made hostile bodies found, on both databases.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
import schemathesis
from litestar import Litestar
from litestar.testing import AsyncTestClient
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from healthcare.adapters.persistence.sqlalchemy import upgrade
from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.settings import Settings
from tests.e2e.conftest import (
    DOCTOR,
    PASSWORD,
    PATIENT,
    SECRET,
    Account,
    assert_problem,
    create_doctor,
    create_patient,
    unique,
)

Client = AsyncTestClient[Litestar]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Per operation, for the fuzzing phase; the coverage phase adds its own deterministic cases.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "50"))
SEED = 20240601
# Cases run, by (operation, generation mode, phase); reported at the end of the session.
CASES: Counter[tuple[str, str, str]] = Counter()

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        # too_slow: every case is a real request, often a database write. data_too_large and
        # filter_too_much: big optional-field bodies and the negative mode's rejection
        # sampling are what we ask for here, not signs of a broken strategy.
        "suppress-health-check": ["too_slow", "data_too_large", "filter_too_much"],
        "generation": {
            "mode": "all",  # positive and negative data
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,  # derandomised: the same cases on every run
            "database": "none",  # no .hypothesis directory, no replay of earlier failures
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)

# Schemathesis reads the document at collection time, before any database exists, so an app
# on the in-memory adapter serves it: the document does not depend on the database. Every
# case is then sent to the SQLite app of the `fuzz_app` fixture.
_DOCUMENT_APP = create_app(build_container(Settings(database_url="memory://", secret_key=SECRET)))
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", _DOCUMENT_APP, config=CONFIG)

# The coverage phase builds its cases at collection time too, before the fixture has signed
# the fuzz user up: they carry this stand-in, which `test_api` swaps for the real token.
_PENDING = "pending-token-of-the-fuzz-user"
_TOKEN: dict[str, str] = {}


@schema.auth(refresh_interval=None).apply_to(
    lambda ctx: bool(ctx.operation.definition.raw.get("security"))
)
class FuzzUserBearer:
    """The fuzz user's access token, on exactly the operations that declare BearerToken.

    Schemathesis leaves it off, or mangles it, in the negative cases about the security
    requirement itself. Register, login, refresh, health and ready never get it.
    """

    def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext) -> str:
        return _TOKEN.get("access", _PENDING)

    def set(self, case: schemathesis.Case, data: str, ctx: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


_GENDERS = ("male", "FEMALE", "Other", "unKnown")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@schema.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    """Let the fuzzing phase's positive patient bodies reach the database.

    The document gives `gender` as a plain string (four words, in any letter case, are
    accepted) and `email` as a string that must look like an address. Random positive bodies
    are therefore nearly always a 400 and never reach the database or PatientOut. This sets
    both to valid values and keeps the random name, age, phone, address and notes. Negative
    cases, and the coverage phase, are left as generated.
    """
    if (
        case.operation.path in {"/api/patients", "/api/patients/{patient_id}"}
        and case.meta is not None
        and case.meta.generation.mode is GenerationMode.POSITIVE
        and isinstance(case.body, dict)
    ):
        body = dict(case.body)
        body["gender"] = _GENDERS[len(str(body.get("name", ""))) % len(_GENDERS)]
        if isinstance(body.get("email"), str) and not _EMAIL.fullmatch(body["email"]):
            body["email"] = "patient@example.org"
        case.body = body
    return case


class _CaseCountSummary:
    """Reports how many schemathesis cases ran, in pytest's closing summary."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not CASES:
            return
        by = Counter[str]()
        for (_, mode, phase), count in CASES.items():
            by[mode] += count
            by[phase] += count
        operations = len({operation for operation, _, _ in CASES})
        detail = ", ".join(f"{name} {count}" for name, count in sorted(by.items()))
        terminalreporter.write_sep("-", "schemathesis")
        terminalreporter.write_line(
            f"schemathesis: {sum(CASES.values())} cases run against {operations} operations "
            f"({detail}); seed {SEED}, at most {MAX_EXAMPLES} fuzzing examples per operation"
        )


@pytest.fixture(scope="module")
def fuzz_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Litestar]:
    """The app under test, its fuzz user signed in and owning patient, doctor and mapping 1."""
    url = os.environ.get("SCHEMATHESIS_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('schemathesis') / 'api.sqlite3'}"
    )
    upgrade(url)
    # As tests/e2e/conftest.py's `settings`: cheapest bcrypt, and the throttles wide open,
    # since every case comes from one client address (test_throttling covers them).
    settings = Settings(
        database_url=url,
        secret_key=SECRET,
        bcrypt_rounds=4,
        login_attempts_per_username=10_000,
        login_failures_per_client=10_000,
        auth_requests_per_minute=100_000,
    )
    app = create_app(build_container(settings))
    username = unique("fuzz")
    # Schemathesis's own transport, hence its event loop: the engine's pool lives on it.
    with asgi.get_client(app) as client:
        registered = client.post(
            "/api/auth/register/",
            json={"username": username, "email": f"{username}@example.org", "password": PASSWORD},
        )
        assert registered.status_code == 201, registered.text
        tokens = client.post("/api/auth/login/", json={"username": username, "password": PASSWORD})
        assert tokens.status_code == 200, tokens.text
        headers = {"Authorization": f"Bearer {tokens.json()['access']}"}
        patient = client.post("/api/patients/", json=PATIENT, headers=headers)
        doctor = client.post("/api/doctors/", json=DOCTOR, headers=headers)
        mapping = client.post(
            "/api/mappings/",
            json={"patient": patient.json()["id"], "doctor": doctor.json()["id"]},
            headers=headers,
        )
        assert mapping.status_code == 201, mapping.text
    _TOKEN["access"] = tokens.json()["access"]
    if not request.config.pluginmanager.has_plugin("schemathesis-case-count"):
        request.config.pluginmanager.register(_CaseCountSummary(), "schemathesis-case-count")
    yield app
    _TOKEN.clear()
    # Runs the apps' shutdown, which disposes of the engine on the loop that opened it.
    asgi.shutdown_lifespans()


@schema.parametrize()
def test_api(case: schemathesis.Case, fuzz_app: Litestar) -> None:
    if case.headers and case.headers.get("Authorization") == f"Bearer {_PENDING}":
        case.headers["Authorization"] = f"Bearer {_TOKEN['access']}"
    mode = case.meta.generation.mode.value if case.meta else "explicit"
    phase = case.meta.phase.name.value if case.meta else "explicit"
    CASES[(case.operation.label, mode, phase)] += 1
    case.call_and_validate(app=fuzz_app, checks=CHECKS)


def test_every_operation_got_positive_and_negative_cases() -> None:
    """A floor, so that a configuration which silently generates nothing cannot pass."""
    if not CASES:
        pytest.skip("test_api did not run in this session")
    ran = Counter[str]()
    modes: dict[str, set[str]] = {}
    for (operation, mode, _), count in CASES.items():
        ran[operation] += count
        modes.setdefault(operation, set()).add(mode)
    documented = {
        result.ok().label for result in schema.get_all_operations() if isinstance(result, Ok)
    }
    if set(ran) != documented:
        pytest.skip("test_api ran for some operations only (-k?)")
    # GET /health and /ready take nothing, so they get about 10; the others 60 or more.
    assert min(ran.values()) >= 5, ran
    assert all(found == {"positive", "negative"} for found in modes.values()), modes
    assert sum(ran.values()) >= 40 * len(documented), sum(ran.values())


# --- What deeper runs and hand-made bodies found, on both databases ----------------------------

NUL = "nul\x00byte"
NUL_EMAIL = "nul\x00byte@example.org"


class NulCase(NamedTuple):
    route: str
    field: str
    value: str
    expected: int  # text refuses U+0000 (PostgreSQL cannot store it): a 400, never a 500


NUL_FIELDS = [
    NulCase("register", "username", NUL, 400),
    NulCase("register", "email", NUL_EMAIL, 400),
    NulCase("register", "password", "correct\x00horse", 400),
    NulCase("login", "username", NUL, 401),  # no account can have such a name
    NulCase("login", "email", NUL_EMAIL, 401),
    NulCase("login", "password", NUL, 401),
    NulCase("refresh", "refresh", NUL, 401),
    NulCase("create doctor", "name", NUL, 400),
    NulCase("create doctor", "specialization", NUL, 400),
    NulCase("create doctor", "email", NUL_EMAIL, 400),
    NulCase("create doctor", "phone", NUL, 400),
    NulCase("replace doctor", "name", NUL, 400),
    NulCase("create patient", "name", NUL, 400),
    NulCase("create patient", "gender", "ma\x00le", 400),
    NulCase("create patient", "phone", NUL, 400),
    NulCase("create patient", "email", NUL_EMAIL, 400),
    NulCase("create patient", "address", NUL, 400),
    NulCase("create patient", "notes", NUL, 400),
    NulCase("replace patient", "notes", NUL, 400),
]


async def _body_request(
    client: Client, alice: Account, route: str
) -> tuple[str, str, dict[str, Any]]:
    """Method, path and a valid body for one of the routes named in NUL_FIELDS."""
    if route == "register":
        name = unique()
        body = {"username": name, "email": f"{name}@example.org", "password": PASSWORD}
        return "POST", "/api/register/", body
    if route == "login":
        return "POST", "/api/token/", {"username": alice.username, "password": PASSWORD}
    if route == "refresh":
        return "POST", "/api/token/refresh/", {"refresh": alice.refresh}
    if route == "create doctor":
        return "POST", "/api/doctors/", dict(DOCTOR)
    if route == "replace doctor":
        doctor = await create_doctor(client, alice)
        return "PUT", f"/api/doctors/{doctor['id']}/", dict(DOCTOR)
    if route == "create patient":
        return "POST", "/api/patients/", dict(PATIENT)
    assert route == "replace patient"
    patient = await create_patient(client, alice)
    return "PUT", f"/api/patients/{patient['id']}/", dict(PATIENT)


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{c.route} {c.field}") for c in NUL_FIELDS])
async def test_nul_characters_are_never_a_500(
    client: Client,
    alice: Account,
    case: NulCase,
) -> None:
    """Found by SCHEMATHESIS_MAX_EXAMPLES=300 on PostgreSQL (POST /api/doctors, a NUL in
    `specialization` was a 500); the rest by hand. Same answer on both databases."""
    method, path, body = await _body_request(client, alice, case.route)
    if case.field == "email" and case.route == "login":
        del body["username"]  # sign in by email instead
    body[case.field] = case.value
    response = await client.request(method, path, json=body, headers=alice.headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")


BODY_ROUTES = [
    ("POST", "/api/auth/register/"),
    ("POST", "/api/auth/login/"),
    ("POST", "/api/patients/"),
    ("POST", "/api/mappings/"),
]


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
async def test_a_body_that_is_not_utf8_is_400(
    client: Client, alice: Account, method: str, path: str
) -> None:
    """A JSON string with a byte that is not UTF-8 (here Latin-1 "é"): was a 500."""
    body = b'{"username": "caf\xe9", "name": "caf\xe9", "password": "x", "patient": 1}'
    headers = {**alice.headers, "Content-Type": "application/json"}
    assert_problem(await client.request(method, path, content=body, headers=headers), 400)


@pytest.mark.parametrize(("method", "path"), BODY_ROUTES)
async def test_deeply_nested_json_is_400(
    client: Client, alice: Account, method: str, path: str
) -> None:
    """20 kB of nested arrays, far below the 1 MiB limit: a RecursionError, was a 500."""
    body = b'{"name": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    headers = {**alice.headers, "Content-Type": "application/json"}
    assert_problem(await client.request(method, path, content=body, headers=headers), 400)


# --- The document's own accuracy ---------------------------------------------------------------


def _operations() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, operations in schema.raw_schema["paths"].items():
        for method, operation in operations.items():
            yield f"{method.upper()} {path}", operation


def test_integer_bounds_in_the_document_are_values_the_api_accepts() -> None:
    bounds = {
        f"{label} {parameter['name']}": parameter["schema"]["maximum"]
        for label, operation in _operations()
        for parameter in operation.get("parameters", [])
        if "maximum" in parameter["schema"]
    }
    bounds |= {
        f"{name}.{field}": spec["maximum"]
        for name, component in schema.raw_schema["components"]["schemas"].items()
        for field, spec in component.get("properties", {}).items()
        if "maximum" in spec
    }
    assert bounds
    assert {name: bound for name, bound in bounds.items() if bound > 2**63 - 1} == {}


def test_request_bodies_in_the_document_forbid_unknown_fields() -> None:
    components = schema.raw_schema["components"]["schemas"]
    bodies = {
        label: content["schema"]["$ref"].rsplit("/", 1)[-1]
        for label, operation in _operations()
        for content in operation.get("requestBody", {}).get("content", {}).values()
    }
    assert bodies
    open_bodies = {
        label: name
        for label, name in bodies.items()
        if components[name].get("additionalProperties") is not False
    }
    assert open_bodies == {}
