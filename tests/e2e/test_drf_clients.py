"""Clients written for the Django REST Framework service, unchanged, on both databases.

Refresh as the seed documents it, read-only fields sent back, form bodies, simplejwt's
claims, registration without a username, and every bad field named at once.
"""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import (
    DOCTOR,
    PASSWORD,
    PATIENT,
    Account,
    assert_problem,
    create_doctor,
    create_patient,
    sign_up,
    unique,
)

Client = AsyncTestClient[Litestar]

# (register, login, refresh) of each of the seed's two API documents.
ROUTE_SETS = [
    pytest.param(("/api/register/", "/api/token/", "/api/token/refresh/"), id="seed-token"),
    pytest.param(
        ("/api/auth/register/", "/api/auth/login/", "/api/auth/token/refresh/"), id="seed-auth"
    ),
]
REFRESH_ROUTES = ["/api/token/refresh/", "/api/auth/token/refresh/"]
FORM = "application/x-www-form-urlencoded"


def bearer(access: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access}"}


async def patient_count(client: Client, account: Account) -> int:
    listed = await client.get("/api/patients/", headers=account.headers)
    return int(listed.headers["x-total-count"])


# --- 1. Refresh ---------------------------------------------------------------------------


@pytest.mark.parametrize("routes", ROUTE_SETS)
async def test_the_seeds_documented_flow_end_to_end(
    client: Client, routes: tuple[str, str, str]
) -> None:
    """Exactly what a DRF client does: register, login, create, list, GET then PUT back
    the object it got, refresh three times with the original refresh token, logout."""
    register, login, refresh = routes
    username = unique()
    registered = await client.post(
        register,
        json={"username": username, "email": f"{username}@example.org", "password": PASSWORD},
    )
    assert registered.status_code == 201, registered.text
    tokens = (await client.post(login, json={"username": username, "password": PASSWORD})).json()
    headers = bearer(tokens["access"])

    created = await client.post("/api/patients/", json=PATIENT, headers=headers)
    assert created.status_code == 201, created.text
    listed = await client.get("/api/patients/", headers=headers)
    assert [p["id"] for p in listed.json()] == [created.json()["id"]]
    url = f"/api/patients/{created.json()['id']}/"
    record = (await client.get(url, headers=headers)).json()
    record["age"] = 37
    replaced = await client.put(url, json=record, headers=headers)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["age"] == 37

    for _ in range(3):
        refreshed = await client.post(refresh, json={"refresh": tokens["refresh"]})
        assert refreshed.status_code == 200, refreshed.text
        assert set(refreshed.json()) == {"access", "token_type", "expires_in"}
        me = await client.get("/api/auth/me/", headers=bearer(refreshed.json()["access"]))
        assert me.json()["username"] == username

    out = await client.post(
        "/api/auth/logout/", json={"refresh": tokens["refresh"]}, headers=headers
    )
    assert out.status_code == 204
    assert_problem(await client.post(refresh, json={"refresh": tokens["refresh"]}), 401)


@pytest.mark.parametrize("path", REFRESH_ROUTES)
async def test_a_kept_refresh_token_dies_with_a_password_change(
    client: Client, alice: Account, path: str
) -> None:
    assert (await client.post(path, json={"refresh": alice.refresh})).status_code == 200
    changed = await client.post(
        "/api/auth/password/",
        json={"current_password": PASSWORD, "new_password": "another long passphrase"},
        headers=alice.headers,
    )
    assert changed.status_code == 204
    assert_problem(await client.post(path, json={"refresh": alice.refresh}), 401)


@pytest.mark.parametrize("path", REFRESH_ROUTES)
async def test_a_kept_refresh_token_dies_with_deactivation(
    client: Client, alice: Account, admin: Account, path: str
) -> None:
    assert (await client.post(path, json={"refresh": alice.refresh})).status_code == 200
    off = await client.post(f"/api/users/{alice.id}/deactivate/", headers=admin.headers)
    assert off.status_code == 200
    assert_problem(await client.post(path, json={"refresh": alice.refresh}), 401)
    # Reactivated, the old chain stays revoked: a new sign-in is needed.
    await client.post(f"/api/users/{alice.id}/activate/", headers=admin.headers)
    assert_problem(await client.post(path, json={"refresh": alice.refresh}), 401)


@pytest.mark.parametrize("path", REFRESH_ROUTES)
async def test_with_rotation_each_refresh_hands_over_the_next_token(
    rotating_client: Client, path: str
) -> None:
    account = await sign_up(rotating_client)
    first = await rotating_client.post(path, json={"refresh": account.refresh})
    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) == {"access", "refresh", "token_type", "expires_in"}
    second = await rotating_client.post(path, json={"refresh": body["refresh"]})
    assert second.status_code == 200
    # The first token was spent: presenting it again ends the chain (reuse detection).
    assert_problem(await rotating_client.post(path, json={"refresh": account.refresh}), 401)
    assert_problem(
        await rotating_client.post(path, json={"refresh": second.json()["refresh"]}), 401
    )


# --- 2. Read-only fields ------------------------------------------------------------------


async def test_read_only_fields_of_a_patient_are_ignored(
    client: Client, alice: Account, bob: Account
) -> None:
    created = await create_patient(client, alice)
    url = f"/api/patients/{created['id']}/"
    echoed = {
        **created,
        "age": 40,
        "id": created["id"] + 1000,
        "created_by": bob.id,
        "created_at": "1999-01-01T00:00:00Z",
        "updated_at": "nonsense of any type",
    }

    replaced = await client.put(url, json=echoed, headers=alice.headers)

    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["id"], body["created_by"], body["created_at"], body["age"]) == (
        created["id"],
        alice.id,
        created["created_at"],
        40,
    )
    assert body["updated_at"] != "nonsense of any type"
    assert (await patient_count(client, bob)) == 0  # nothing was given to bob
    posted = await client.post("/api/patients/", json=echoed, headers=alice.headers)
    assert posted.status_code == 201
    assert posted.json()["id"] != echoed["id"] and posted.json()["created_by"] == alice.id


async def test_read_only_fields_of_doctors_and_mappings_are_ignored(
    client: Client, alice: Account, bob: Account
) -> None:
    doctor = await create_doctor(client, alice)
    url = f"/api/doctors/{doctor['id']}/"
    echoed = {**doctor, "specialization": "Oncology", "created_by": bob.id, "id": 1}
    replaced = await client.put(url, json=echoed, headers=alice.headers)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["created_by"] == alice.id
    assert replaced.json()["id"] == doctor["id"]

    patient = await create_patient(client, alice)
    mapping = await client.post(
        "/api/mappings/",
        json={
            "patient": patient["id"],
            "doctor": doctor["id"],
            "id": 12345,
            "doctor_detail": {"name": "Dr. Nobody"},
            "created_at": "2000-01-01T00:00:00Z",
        },
        headers=alice.headers,
    )
    assert mapping.status_code == 201, mapping.text
    assert mapping.json()["doctor_detail"]["name"] == DOCTOR["name"]


async def test_unknown_fields_are_still_refused_and_nothing_changes(
    client: Client, alice: Account
) -> None:
    created = await create_patient(client, alice)
    url = f"/api/patients/{created['id']}/"
    typo = {**created, "age": 50, "adress": "1 Main Street"}
    assert_problem(await client.put(url, json=typo, headers=alice.headers), 400, "adress")
    assert (await client.get(url, headers=alice.headers)).json() == created


# --- 3. Form bodies -----------------------------------------------------------------------


@pytest.mark.parametrize("routes", ROUTE_SETS)
@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
async def test_register_login_and_refresh_with_forms(
    client: Client, routes: tuple[str, str, str], encoding: str
) -> None:
    register, login, refresh = routes

    def form(**fields: str) -> dict[str, Any]:
        if encoding == "urlencoded":
            return {"data": fields}
        return {"files": {name: (None, value) for name, value in fields.items()}}

    username = unique()
    registered = await client.post(
        register, **form(username=username, email=f"{username}@x.org", password=PASSWORD)
    )
    assert registered.status_code == 201, registered.text
    tokens = await client.post(login, **form(username=username, password=PASSWORD))
    assert tokens.status_code == 200, tokens.text
    refreshed = await client.post(refresh, **form(refresh=tokens.json()["refresh"]))
    assert refreshed.status_code == 200, refreshed.text
    logout = await client.post(
        "/api/auth/logout/",
        **form(refresh=tokens.json()["refresh"]),
        headers=bearer(tokens.json()["access"]),
    )
    assert logout.status_code == 204


async def test_a_form_login_as_curl_sends_it(client: Client, alice: Account) -> None:
    body = f"username={alice.username}&password={PASSWORD.replace(' ', '+')}".encode()
    response = await client.post("/api/token/", content=body, headers={"Content-Type": FORM})
    assert response.status_code == 200, response.text


async def test_patients_doctors_and_mappings_from_forms(client: Client, alice: Account) -> None:
    patient = await client.post(
        "/api/patients/",
        data={"name": "Ada", "age": "36", "gender": "female", "phone": "", "notes": "n"},
        headers=alice.headers,
    )
    assert patient.status_code == 201, patient.text
    assert (patient.json()["age"], patient.json()["phone"]) == (36, None)
    doctor = await client.post(
        "/api/doctors/",
        files={"name": (None, "Dr. Grey"), "specialization": (None, "Surgery")},
        headers=alice.headers,
    )
    assert doctor.status_code == 201, doctor.text
    mapping = await client.post(
        "/api/mappings/",
        data={"patient": str(patient.json()["id"]), "doctor": str(doctor.json()["id"])},
        headers=alice.headers,
    )
    assert mapping.status_code == 201, mapping.text
    replaced = await client.put(
        f"/api/patients/{patient.json()['id']}/",
        data={**PATIENT, "age": "+41", "email": ""},
        headers=alice.headers,
    )
    assert replaced.status_code == 200, replaced.text
    assert (replaced.json()["age"], replaced.json()["email"]) == (41, None)


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"age": "36.0"}, "age"),  # a whole number, as in JSON: 36.0 is not one there either
        ({"age": "1e2"}, "age"),
        ({"age": "thirty"}, "age"),
        ({"age": ""}, "age"),  # required: empty is not absent
        ({"age": "151"}, "age"),
        ({"name": ""}, "name"),
        ({"gender": "robot"}, "gender"),
        ({"email": "nope"}, "email"),
        ({"weight": "70"}, "weight"),
    ],
)
async def test_form_fields_follow_the_json_rules(
    client: Client, alice: Account, fields: dict[str, str], bad: str
) -> None:
    body = {"name": "Ada", "age": "36", "gender": "Female", **fields}
    for send in ({"data": body}, {"files": {k: (None, v) for k, v in body.items()}}):
        response = await client.post("/api/patients/", **send, headers=alice.headers)
        assert_problem(response, 400, bad)
    assert (await patient_count(client, alice)) == 0


async def test_malformed_forms_are_400(client: Client, alice: Account) -> None:
    headers = alice.headers
    repeated = b"name=a&name=b&age=1&gender=male"
    response = await client.post(
        "/api/patients/", content=repeated, headers={**headers, "Content-Type": FORM}
    )
    assert_problem(response, 400, "name")
    not_utf8 = b"name=caf\xe9&age=1&gender=male"
    response = await client.post(
        "/api/patients/", content=not_utf8, headers={**headers, "Content-Type": FORM}
    )
    assert_problem(response, 400, "body")
    a_file: dict[str, tuple[str | None, bytes | str]] = {
        "name": ("name.txt", b"Ada"),
        "age": (None, "3"),
        "gender": (None, "male"),
    }
    assert_problem(await client.post("/api/patients/", files=a_file, headers=headers), 400, "name")
    no_boundary = {**headers, "Content-Type": "multipart/form-data"}
    response = await client.post("/api/patients/", content=b"--x--", headers=no_boundary)
    assert_problem(response, 400, "body")
    broken = {**headers, "Content-Type": "multipart/form-data; boundary=xyz"}
    response = await client.post("/api/patients/", content=b"--xyz\r\ngarbage", headers=broken)
    assert_problem(response, 400, "body")
    assert (await patient_count(client, alice)) == 0


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/octet-stream"]
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/patients/"), ("POST", "/api/doctors/"), ("POST", "/api/token/")],
)
async def test_other_content_types_are_415(
    client: Client, alice: Account, content_type: str, method: str, path: str
) -> None:
    body = b'{"name": "Ada", "age": 3, "gender": "male", "specialization": "x"}'
    response = await client.request(
        method, path, content=body, headers={**alice.headers, "Content-Type": content_type}
    )
    assert_problem(response, 415)
    assert (await patient_count(client, alice)) == 0


async def test_an_empty_body_names_every_required_field(client: Client, alice: Account) -> None:
    headers = {**alice.headers, "Content-Type": "application/json"}
    response = await client.post("/api/patients/", content=b"", headers=headers)
    assert_problem(response, 400, "name", "age", "gender")
    response = await client.post("/api/patients/", content=b"[]", headers=headers)
    assert_problem(response, 400, "body")


# --- 4. Claims ----------------------------------------------------------------------------


async def test_tokens_carry_simplejwt_claims(client: Client, alice: Account) -> None:
    for token, kind in ((alice.access, "access"), (alice.refresh, "refresh")):
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["token_type"] == kind
        assert claims["user_id"] == alice.id
        assert claims["sub"] == str(alice.id)
        assert isinstance(claims["jti"], str) and claims["jti"]
        assert isinstance(claims["iat"], int) and claims["exp"] > claims["iat"]


# --- 5. Registration without a username ---------------------------------------------------


@pytest.mark.parametrize("routes", ROUTE_SETS)
async def test_registration_without_a_username_uses_the_email(
    client: Client, routes: tuple[str, str, str]
) -> None:
    register, login, _ = routes
    email = f"{unique()}@example.org"
    registered = await client.post(register, json={"email": email, "password": PASSWORD})
    assert registered.status_code == 201, registered.text
    assert registered.json()["username"] == email
    signed_in = await client.post(login, json={"username": email, "password": PASSWORD})
    assert signed_in.status_code == 200
    again = await client.post(register, json={"email": email.upper(), "password": PASSWORD})
    assert_problem(again, 409)


async def test_registration_without_a_username_keeps_the_rules(client: Client) -> None:
    email = f"o'{unique()}@example.org"  # an address, but not a username
    response = await client.post("/api/register/", json={"email": email, "password": PASSWORD})
    assert_problem(response, 400, "username")
    extra = {"email": f"{unique()}@example.org", "password": PASSWORD, "name": "Ada"}
    assert_problem(await client.post("/api/register/", json=extra), 400, "name")


# --- 6. Every bad field at once -----------------------------------------------------------


async def test_every_bad_field_is_named_in_one_response(client: Client, alice: Account) -> None:
    body = {"nam": "Ada", "age": "ten", "gender": 7, "phone": 12, "email": None}
    response = await client.post("/api/patients/", json=body, headers=alice.headers)
    problem = assert_problem(response, 400, "nam", "age", "gender", "phone", "name")
    assert len(problem["errors"]) == 5  # email may be null: it is optional

    register = {"username": 5, "email": ["x"], "password": None, "is_staff": True}
    response = await client.post("/api/auth/register/", json=register)
    assert_problem(response, 400, "username", "email", "password", "is_staff")
    mapping = {"patient": "one", "doctor": 0, "extra": 1}
    response = await client.post("/api/mappings/", json=mapping, headers=alice.headers)
    assert_problem(response, 400, "patient", "doctor", "extra")
