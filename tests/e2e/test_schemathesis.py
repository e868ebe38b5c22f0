"""Schemathesis against the app's own OpenAPI document, in process; then what it cannot send.

``test_api`` gives every operation in the document positive and negative data (generation
mode "all") from schemathesis's examples, coverage and fuzzing phases; ``test_stateful``
chains operations through the document's links (create, then read, change and delete what
was created). Every response is held to every check schemathesis has (``--checks all``):
no 5xx; status code, content type, headers and body as documented; schema-valid data
accepted and schema-invalid data refused; no operation that ignores its authentication;
405 with ``Allow`` for methods not documented; a deleted resource gone; a created one
readable.

Both run on SQLite and on PostgreSQL, each on a database of its own, migrated afresh:
requests go through schemathesis's ASGI transport (no server) to the app, as a freshly
registered user who owns patient 1, doctor 1 and mapping 1, so the boundary ids the coverage
phase favours reach real rows. The throttles are raised for the run (every case comes from
one address). test_stateful seeds a database of its own the same way, and starts every
scenario on a fresh copy of it with a fresh app, so that the same requests always meet the
same state (see ``_Workflow``). The run is derandomised, so every run sends the same cases.
For a deeper run by hand:

    SCHEMATHESIS_MAX_EXAMPLES=300 .venv/bin/pytest tests/e2e/test_schemathesis.py

Where the document cannot state a rule (a password's 72 bytes, page with offset), it says
it in words, and ``_keep_positive_cases_valid`` below makes a positive case keep it, so
that "schema-valid data is accepted" tests what the document does state. Negative cases
are sent as generated.

The tests after them pin what such runs and hand-made hostile bodies found, on both
databases.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, TypeAlias, cast

import hypothesis
import pytest
import schemathesis
from litestar import Litestar
from litestar.testing import AsyncTestClient
from requests.structures import CaseInsensitiveDict
from schemathesis.checks import CheckFunction
from schemathesis.config._checks import POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi
from sqlalchemy import Engine, make_url

from healthcare.adapters.persistence.sqlalchemy import upgrade
from healthcare.domain import rules
from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.settings import Settings
from tests.conftest import _postgres_test_url
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
AnyCase: TypeAlias = "schemathesis.Case[Any]"

# Per operation, for the fuzzing phase; the coverage phase adds its own deterministic cases.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
# Scenarios of the stateful phase, and the most calls in one.
STATEFUL_EXAMPLES = int(os.environ.get("SCHEMATHESIS_STATEFUL_EXAMPLES", "40"))
STATEFUL_STEPS = 8
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
        "checks": {
            # Every check is on. Schema-valid data may also meet a 412: If-Match is a
            # well-formed precondition that names a version which is not (or no longer) the
            # record's, and RFC 9110 answers that with 412, as a state-dependent outcome like
            # the 404 and 409 the check already expects; it is not a refusal of the data.
            # Both off until the server bugs they found are fixed (then turn them on):
            # - negative: the text "null" for an optional integer, time or enum query
            #   parameter is read as absent (GET /api/patients?min_age=null is 200:
            #   msgspec's lax conversion, through Litestar, turns "null" into None);
            # - positive: an empty form body on PATCH is "body is required" (400), where
            #   JSON's {} changes nothing (200); and a password change's success is not
            #   yet undone between cases, so later positive cases give a stale password.
            "negative_data_rejection": {"enabled": True},
            "positive_data_acceptance": {
                "enabled": True,
                "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "412"],
            },
        },
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
            "stateful": {"enabled": True, "max-steps": STATEFUL_STEPS},
        },
    }
)

# Schemathesis reads the document at collection time, before any database exists, so an app
# on the in-memory adapter serves it: the document does not depend on the database. Every
# case is then sent to the app of the `fuzz_app` fixture.
_DOCUMENT_APP = create_app(build_container(Settings(database_url="memory://", secret_key=SECRET)))
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", _DOCUMENT_APP, config=CONFIG)

# The coverage phase builds its cases at collection time too, before the fixture has signed
# the fuzz user up: they carry this stand-in, which `test_api` swaps for the real token.
_PENDING = "pending-token-of-the-fuzz-user"


class _FuzzUser:
    """The signed-in fuzz user of the current database: its token and current password."""

    access: str = _PENDING
    password: str = PASSWORD
    username: str = ""


FUZZ_USER = _FuzzUser()


@schema.auth(refresh_interval=None).apply_to(
    lambda ctx: bool(ctx.operation.definition.raw.get("security"))
)
class FuzzUserBearer:
    """The fuzz user's access token, on exactly the operations that declare BearerToken.

    Schemathesis leaves it off, or mangles it, in the negative cases about the security
    requirement itself. Register, login, refresh, health and ready never get it.
    """

    def get(self, case: AnyCase, ctx: schemathesis.AuthContext) -> str:
        return FUZZ_USER.access

    def set(self, case: AnyCase, data: str, ctx: schemathesis.AuthContext) -> None:
        headers = case.headers if case.headers is not None else CaseInsensitiveDict()
        headers["Authorization"] = f"Bearer {data}"
        case.headers = headers


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def _fit_utf8(text: str, limit: int) -> str:
    while len(text.encode()) > limit:
        text = text[:-1]
    return text


def _keep_query_rules(query: dict[str, Any]) -> None:
    """The rules between query parameters, which a schema cannot state (each parameter's
    description does): page is not combined with offset, page_size with limit only when
    equal, min_age at most max_age, each bound of a time range before the other."""
    if "page" in query:
        query.pop("offset", None)
    if "page_size" in query and "limit" in query:
        query["page_size"] = query["limit"]
    if {"min_age", "max_age"} <= query.keys() and query["min_age"] > query["max_age"]:
        query["min_age"], query["max_age"] = query["max_age"], query["min_age"]
    for first, last in (("created_after", "created_before"), ("since", "until")):
        if {first, last} <= query.keys() and str(query[first]) >= str(query[last]):
            del query[last]
    if isinstance(ordering := query.get("ordering"), str):
        # Each field once: "name,-name" names name twice.
        seen: dict[str, str] = {}
        for key in ordering.split(","):
            seen.setdefault(key.lstrip("-"), key)
        query["ordering"] = ",".join(seen.values())


def _keep_body_rules(case: AnyCase, body: dict[str, Any]) -> None:
    """A password's rules that a schema cannot state (its description does): at most 72
    bytes in UTF-8, not the username; and the current password is the user's own."""
    for field in ("password", "new_password"):
        if isinstance(body.get(field), str):
            body[field] = _fit_utf8(body[field], rules.PASSWORD_MAX_BYTES)
            username = body.get("username") or body.get("email") or FUZZ_USER.username
            if isinstance(username, str) and body[field].casefold() == username.casefold():
                body[field] = f"{body[field]}!"
    if "current_password" in body:
        body["current_password"] = FUZZ_USER.password


# (Global hooks, as schemathesis has it: this module loads no other schema.)
@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: AnyCase, kwargs: dict[str, Any]) -> None:
    """Keep positive cases within the rules the document states only in words; count."""
    if case.headers and case.headers.get("Authorization") == f"Bearer {_PENDING}":
        case.headers["Authorization"] = f"Bearer {FUZZ_USER.access}"
    mode = case.meta.generation.mode if case.meta else None
    if mode is GenerationMode.POSITIVE:
        if isinstance(case.body, dict) and case.media_type in _FORMS:
            # A form cannot say null: an absent field is how it says none (README).
            case.body = {k: v for k, v in case.body.items() if v is not None}
        if isinstance(case.query, dict):
            _keep_query_rules(case.query)
        if isinstance(case.body, dict):
            _keep_body_rules(case, case.body)
    if case.meta is not None:  # (not the requests a check sends on its own)
        CASES[
            (case.operation.label, case.meta.generation.mode.value, case.meta.phase.name.value)
        ] += 1


def _note_password_change(case: AnyCase, response: Response) -> None:
    """A password change that succeeded changed the password the next one must give."""
    if (
        case.operation.path == "/api/auth/password"
        and case.method.upper() == "POST"  # (the coverage phase also sends OPTIONS: 204)
        and response.status_code == 204
        and isinstance(case.body, dict)
    ):
        FUZZ_USER.password = str(case.body["new_password"])


# Where a run writes its CASES (the floor test's own run reads them).
CASES_FILE = "SCHEMATHESIS_CASES_FILE"


class _CaseCountSummary:
    """Reports how many schemathesis cases ran, in pytest's closing summary."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not CASES:
            return
        if path := os.environ.get(CASES_FILE):
            Path(path).write_text(json.dumps([[list(key), count] for key, count in CASES.items()]))
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


def _fresh_database(
    request: pytest.FixtureRequest, tmp: pytest.TempPathFactory, suffix: str = "schemathesis"
) -> str:
    """A database of the run's own, migrated, so that the fuzz user's rows are number 1."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp.mktemp(suffix) / 'api.sqlite3'}"
    else:
        admin: Engine = request.getfixturevalue("postgres_admin")
        postgres = make_url(_postgres_test_url())
        postgres = postgres.set(database=f"{postgres.database}_{suffix}")
        with admin.connect() as connection:
            connection.exec_driver_sql(
                f'DROP DATABASE IF EXISTS "{postgres.database}" WITH (FORCE)'
            )
            connection.exec_driver_sql(f'CREATE DATABASE "{postgres.database}"')
        url = postgres.render_as_string(hide_password=False)
    upgrade(url)
    return url


def _fuzz_settings(url: str) -> Settings:
    # As tests/e2e/conftest.py's `settings`: cheapest bcrypt, and the throttles wide open,
    # since every case comes from one client address (test_throttling covers them).
    return Settings(
        database_url=url,
        secret_key=SECRET,
        bcrypt_rounds=4,
        login_attempts_per_username=1_000_000,
        login_failures_per_client=1_000_000,
        auth_requests_per_minute=1_000_000,
    )


def _seed(app: Litestar) -> tuple[str, str]:
    """Signs a new fuzz user up and in, owning patient, doctor and mapping 1; its name and
    access token."""
    username = unique("fuzz")
    # Schemathesis's own transport, hence its event loop: the engine's pool lives on it.
    with asgi.get_client(cast(Any, app)) as client:  # Litestar's precise ASGI types
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
    return username, str(tokens.json()["access"])


def _stop(app: Litestar) -> None:
    """Runs this one app's shutdown (its engine disposed of on the loop that opened it),
    leaving the other apps' lifespans running. Schemathesis only offers to stop them all."""
    with asgi._LOCK:
        lifespan = asgi._LIFESPANS.pop(id(app), None)
    if lifespan is not None:
        lifespan.stop()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def fuzz_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Litestar]:
    """The app under test, its fuzz user signed in and owning patient, doctor and mapping 1."""
    app = create_app(build_container(_fuzz_settings(_fresh_database(request, tmp_path_factory))))
    FUZZ_USER.username, FUZZ_USER.access = _seed(app)
    FUZZ_USER.password = PASSWORD
    if not request.config.pluginmanager.has_plugin("schemathesis-case-count"):
        request.config.pluginmanager.register(_CaseCountSummary(), "schemathesis-case-count")
    yield app
    FUZZ_USER.access = _PENDING
    # Runs the apps' shutdown, which disposes of the engine on the loop that opened it.
    asgi.shutdown_lifespans()


@schema.parametrize()
def test_api(case: AnyCase, fuzz_app: Litestar) -> None:
    response = case.call(app=fuzz_app)
    _note_password_change(case, response)
    # No `checks`: every check the configuration enables, which is all of them.
    case.validate_response(response, transport_kwargs={"app": fuzz_app})


class _StatefulSeed(NamedTuple):
    """The seeded database every stateful scenario starts from, and how to copy it afresh."""

    url: str  # where each scenario's copy lives; no app ever opens the seed itself
    reset: Callable[[], None]  # replaces the copy with a new one of the seed
    username: str
    access: str


def _sqlite_path(url: str) -> Path:
    return Path(make_url(url).database or "")


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def stateful_seed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[_StatefulSeed]:
    """A database of the stateful test's own, seeded as test_api's (the fuzz user owns
    patient, doctor and mapping 1) and then left alone: each scenario runs on a copy."""
    seed_url = _fresh_database(request, tmp_path_factory, "stateful_seed")
    seeding = create_app(build_container(_fuzz_settings(seed_url)))
    username, access = _seed(seeding)
    _stop(seeding)  # closes its connections: a PostgreSQL template must have none
    if request.param == "sqlite":
        seed = _sqlite_path(seed_url)
        copy = seed.with_name("scenario.sqlite3")

        def reset() -> None:
            # The seed's app has closed, so its WAL is checkpointed into the file.
            for leftover in copy.parent.glob(f"{copy.name}*"):
                leftover.unlink()
            shutil.copyfile(seed, copy)

        yield _StatefulSeed(f"sqlite+aiosqlite:///{copy}", reset, username, access)
        return
    admin: Engine = request.getfixturevalue("postgres_admin")
    seed_name = make_url(seed_url).database
    url = make_url(seed_url).set(database=f"{seed_name}_scenario")

    def recreate() -> None:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
            connection.exec_driver_sql(f'CREATE DATABASE "{url.database}" TEMPLATE "{seed_name}"')

    yield _StatefulSeed(url.render_as_string(hide_password=False), recreate, username, access)
    with admin.connect() as connection:
        for name in (url.database, seed_name):
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """Schemathesis's state machine over the document's links.

    Every scenario gets a copy of the seeded database and an app of its own (so no cache of
    verified tokens, throttle or pool outlives it), and the fuzz user's seeded token and
    password: the same requests meet the same state and get the same answers, so the same
    links are open. Hypothesis counts on that: a scenario that shares its first choices
    with an earlier one must be able to make them the same way, or it stops the run with
    FlakyStrategyDefinition.
    """

    seed: ClassVar[_StatefulSeed | None] = None
    app: Litestar | None = None

    def setup(self) -> None:
        seed = _Workflow.seed
        assert seed is not None, "test_stateful sets the seed"
        seed.reset()
        self.app = create_app(build_container(_fuzz_settings(seed.url)))
        FUZZ_USER.username, FUZZ_USER.access = seed.username, seed.access
        FUZZ_USER.password = PASSWORD

    def teardown(self) -> None:
        if self.app is not None:
            _stop(self.app)
        super().teardown()

    def get_call_kwargs(self, case: AnyCase) -> dict[str, Any]:
        return {"app": self.app}

    def after_call(self, response: Response, case: AnyCase) -> None:
        super().after_call(response, case)
        _note_password_change(case, response)

    def validate_response(
        self,
        response: Response,
        case: AnyCase,
        additional_checks: list[CheckFunction] | None = None,
        **kwargs: Any,
    ) -> None:
        case.validate_response(
            response,
            additional_checks=additional_checks,
            transport_kwargs=kwargs,
            recorder=self.recorder,
        )


def test_stateful(stateful_seed: _StatefulSeed) -> None:
    # The fuzz user of test_api's database, if it is running, is put back afterwards.
    fuzz_user = (FUZZ_USER.username, FUZZ_USER.access, FUZZ_USER.password)
    _Workflow.seed = stateful_seed
    try:
        _Workflow.run(
            settings=hypothesis.settings(
                max_examples=STATEFUL_EXAMPLES,
                stateful_step_count=STATEFUL_STEPS,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(hypothesis.HealthCheck),
                # No shrinking: it would copy a database per attempt. Derandomised, a
                # failure comes back on every run as first found.
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
            )
        )
    finally:
        _Workflow.seed = None
        FUZZ_USER.username, FUZZ_USER.access, FUZZ_USER.password = fuzz_user


def _cases_of_a_run_of_its_own(tmp_path: Path) -> Counter[tuple[str, str, str]]:
    """The cases test_api runs on SQLite, counted by a pytest of its own."""
    counts = tmp_path / "cases.json"
    command = [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:randomly"]
    command += ["-p", "no:cacheprovider", "-o", "addopts=", "-k", "test_api and sqlite"]
    environment = {**os.environ, CASES_FILE: str(counts)}
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    return Counter({tuple(key): count for key, count in json.loads(counts.read_text())})


def test_every_operation_got_positive_and_negative_cases(tmp_path: Path) -> None:
    """A floor, so that a configuration which silently generates nothing cannot pass.

    After test_api has run for every operation in this session, it counts those cases; run
    alone (or after a -k that left some out), it runs test_api on SQLite itself to count.
    """
    documented = {
        result.ok().label for result in schema.get_all_operations() if isinstance(result, Ok)
    }
    cases = CASES if {operation for operation, _, _ in CASES} == documented else None
    if cases is None:
        cases = _cases_of_a_run_of_its_own(tmp_path)
    ran = Counter[str]()
    modes: dict[str, set[str]] = {}
    for (operation, mode, _), count in cases.items():
        ran[operation] += count
        modes.setdefault(operation, set()).add(mode)
    assert set(ran) == documented, documented ^ set(ran)
    # GET /health and /ready take nothing, so they get about 10; the others 60 or more.
    assert min(ran.values()) >= 5, ran
    assert all({"positive", "negative"} <= found for found in modes.values()), modes
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
