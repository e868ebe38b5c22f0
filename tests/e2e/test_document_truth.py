"""What schemathesis (every check, and its stateful phase) found where the server and its
OpenAPI document disagreed, pinned on both databases; and the document's statements of the
rules, checked against the server's own.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcare.domain import rules
from healthcare.domain.entities import Gender
from healthcare.domain.errors import InvalidInput
from tests.e2e.conftest import (
    PASSWORD,
    PATIENT,
    Account,
    assert_problem,
    create_doctor,
    create_patient,
    unique,
)

Client = AsyncTestClient[Litestar]


async def test_a_whole_number_written_with_a_fraction_is_accepted(
    client: Client, alice: Account
) -> None:
    """JSON Schema's integer includes 36.0, and DRF reads it as 36: it was a 400."""
    response = await client.post(
        "/api/patients/", json={**PATIENT, "age": 36.0}, headers=alice.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["age"] == 36
    patient, doctor = response.json()["id"], (await create_doctor(client, alice))["id"]
    mapped = await client.post(
        "/api/mappings/",
        json={"patient": float(patient), "doctor": float(doctor)},
        headers=alice.headers,
    )
    assert mapped.status_code == 201, mapped.text


async def test_a_fraction_is_still_not_a_whole_number(client: Client, alice: Account) -> None:
    response = await client.post(
        "/api/patients/", json={**PATIENT, "age": 36.5}, headers=alice.headers
    )
    assert_problem(response, 400, "age")


@pytest.mark.parametrize(
    "path",
    [
        "/api/patients/?page=1&offset=5",
        "/api/patients/?min_age=90&max_age=10",
        "/api/doctors/?page=1&offset=5",
        "/api/mappings/?page_size=5&limit=6",
        "/api/audit/?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z",
    ],
)
async def test_no_credentials_is_401_whatever_else_is_wrong(client: Client, path: str) -> None:
    """The caller is established first: these were 400, or 401, depending on the process
    (the order of a set)."""
    assert_problem(await client.get(path), 401)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/patients/?min_age=null", "min_age"),
        ("/api/patients/?max_age=NULL", "max_age"),
        ("/api/patients/?created_after=Null", "created_after"),
        ("/api/mappings/?patient=null", "patient"),
        ("/api/mappings/?doctor=null", "doctor"),
        # Spelled with escapes: the text is what counts, not how the query wrote it.
        ("/api/patients/?min_age=%6Eull", "min_age"),
        ("/api/mappings/?patient=NU%4CL", "patient"),
    ],
)
async def test_the_text_null_is_not_a_value_of_a_filter(
    client: Client, alice: Account, path: str, field: str
) -> None:
    """Litestar read ?min_age=null as no min_age (200, the filter silently dropped)."""
    assert_problem(await client.get(path, headers=alice.headers), 400, field)


@pytest.mark.parametrize(
    "query", ["user_id=null", "resource_id=null", "resource_type=null", "since=null"]
)
async def test_the_text_null_is_not_a_value_of_an_audit_filter(
    client: Client, admin: Account, query: str
) -> None:
    response = await client.get(f"/api/audit/?{query}", headers=admin.headers)
    assert_problem(response, 400, query.split("=", maxsplit=1)[0])


@pytest.mark.parametrize(
    "path", ["/api/patients/?created_before=0.5", "/api/patients/?created_after=1700000000"]
)
async def test_a_time_is_iso_8601_text_not_a_number(
    client: Client, alice: Account, path: str
) -> None:
    """Litestar read a number as a Unix time (200)."""
    assert_problem(await client.get(path, headers=alice.headers), 400)


async def test_a_comma_inside_an_entity_tag_is_part_of_it(client: Client, alice: Account) -> None:
    """If-Match: W/"a,b" is one (weak) tag, so it does not match: 412. It was split at the
    comma and called malformed (400)."""
    patient = await create_patient(client, alice)
    headers = {**alice.headers, "If-Match": 'W/"a,b"'}
    response = await client.patch(f"/api/patients/{patient['id']}/", json={}, headers=headers)
    assert_problem(response, 412)


@pytest.mark.parametrize("blank", ["", "  "])
async def test_a_blank_username_at_registration_is_left_out(client: Client, blank: str) -> None:
    """The rule of every optional field: blank is none, so the email is the username (in a
    form it already was; in JSON it was a 400)."""
    email = f"{unique()}@example.org"
    body = {"username": blank, "email": email, "password": PASSWORD}
    response = await client.post("/api/auth/register/", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["username"] == email
    login = {"username": blank, "email": email, "password": PASSWORD}
    signed_in = await client.post("/api/auth/login/", json=login)
    assert signed_in.status_code == 200, signed_in.text


async def test_a_search_for_the_text_null_is_a_search(client: Client, alice: Account) -> None:
    await create_patient(client, alice, name="Null Island")
    response = await client.get("/api/patients/?search=null", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert [p["name"] for p in response.json()] == ["Null Island"]


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("resource", ["patients", "doctors"])
async def test_a_patch_without_a_body_changes_nothing(
    client: Client, alice: Account, content_type: str | None, resource: str
) -> None:
    """No body is read as {} (as DRF reads it): for PATCH, nothing to change. It was a 400,
    "body is required", where {} was a 200."""
    created = await (create_patient if resource == "patients" else create_doctor)(client, alice)
    headers = {**alice.headers, **({"Content-Type": content_type} if content_type else {})}
    response = await client.patch(f"/api/{resource}/{created['id']}/", headers=headers)
    assert response.status_code == 200, response.text
    unchanged = {k: v for k, v in created.items() if k != "updated_at"}
    assert {k: v for k, v in response.json().items() if k != "updated_at"} == unchanged


async def test_a_post_without_a_body_still_names_what_is_required(
    client: Client, alice: Account
) -> None:
    response = await client.post("/api/doctors/", headers=alice.headers)
    assert_problem(response, 400, "name", "specialization")


# --- The document states the server's rules ---------------------------------------------


@pytest.fixture(scope="module")
async def document(client: Client) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _component(document: dict[str, Any], name: str) -> dict[str, Any]:
    component: dict[str, Any] = document["components"]["schemas"][name]
    return component


def _matches(pattern: str, value: str) -> bool:
    # JSON Schema's reading: a search, with ECMA-262's classes (the patterns spell theirs out).
    return re.search(pattern, value, re.ASCII) is not None


def test_registration_states_username_email_and_password_rules(document: dict[str, Any]) -> None:
    register = _component(document, "RegisterIn")
    username = register["properties"]["username"]["anyOf"][0]
    assert (username["minLength"], username["maxLength"]) == (3, 150)
    assert username["pattern"] == rules.USERNAME_PATTERN
    assert register["properties"]["email"]["pattern"] == rules.EMAIL_PATTERN
    password = register["properties"]["password"]
    assert password["minLength"] == rules.PASSWORD_MIN_CHARS
    assert password["pattern"] == rules.PASSWORD_PATTERN
    assert "72 bytes" in password["description"]
    assert "username" in password["description"]
    # Without a username, the email must be one.
    email_as_username = {"minLength": 3, "maxLength": 150, "pattern": rules.USERNAME_PATTERN}
    assert {"properties": {"email": email_as_username}} in register["anyOf"]


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("ada@example.org", True),
        ("ada@localhost", False),
        ("a da@example.org", False),
        ("ada\u3000x@example.org", False),  # an ideographic space, which strip() knows
        ("ada\x1c@example.org", False),  # a separator that str.isspace() calls a space
        ("ada@@example.org", False),
    ],
)
def test_the_documented_email_pattern_is_the_servers_rule(value: str, valid: bool) -> None:
    assert _matches(rules.EMAIL_PATTERN, value) is valid
    assert (rules.email_errors(value) == []) is valid


@pytest.mark.parametrize(
    "value", ["12345678", "abcdefgh", "1234567\x00", "\u0663" * 8, "1234567a", "        "]
)
def test_the_documented_password_pattern_is_the_servers_rule(value: str) -> None:
    documented = _matches(rules.PASSWORD_PATTERN, value)
    refused = {e.message for e in rules.password_errors(value, "someone")}
    assert documented is not any("numeric" in m or "NUL" in m for m in refused)


@pytest.mark.parametrize(
    "value", ["male", " FEMALE\t", "Un\u212anown", "other\u3000", "mal e", "man", "ma\x00le", ""]
)
def test_the_documented_gender_pattern_is_the_servers_rule(value: str) -> None:
    try:
        Gender.parse(value)
        parsed = True
    except InvalidInput:
        parsed = False
    assert _matches(rules.GENDER_PATTERN, value) is parsed


def test_login_takes_the_username_or_the_email(document: dict[str, Any]) -> None:
    login = _component(document, "LoginIn")
    assert [option["required"] for option in login["anyOf"]] == [["username"], ["email"]]


@pytest.mark.parametrize(("name", "field"), [("PatientIn", "email"), ("DoctorIn", "phone")])
def test_an_optional_field_may_be_blank_or_null(
    document: dict[str, Any], name: str, field: str
) -> None:
    options = _component(document, name)["properties"][field]["anyOf"]
    assert {"type": "null"} in options
    assert {"type": "string", "pattern": rules.BLANK_PATTERN} in options
    assert '"" or only spaces' in _component(document, name)["properties"][field]["description"]


def test_audit_filters_state_their_minimums_and_are_never_null(document: dict[str, Any]) -> None:
    parameters = {
        p["name"]: p["schema"] for p in document["paths"]["/api/audit"]["get"]["parameters"]
    }
    for name in ("user_id", "resource_id"):
        assert parameters[name]["type"] == "integer"
        assert parameters[name]["minimum"] == 1
    assert not any({"type": "null"} in schema.get("oneOf", []) for schema in parameters.values())


def test_a_patch_body_is_optional_in_the_document(document: dict[str, Any]) -> None:
    for path in ("/api/patients/{patient_id}", "/api/doctors/{doctor_id}"):
        assert document["paths"][path]["patch"]["requestBody"]["required"] is False
