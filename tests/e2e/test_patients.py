"""Patient records: CRUD, privacy, validation and paging."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import PATIENT, Account, assert_problem, create_patient

Client = AsyncTestClient[Litestar]


async def test_patient_crud(client: Client, alice: Account) -> None:
    created = await create_patient(client, alice, phone="+44 20 7946 0000", notes="")
    assert created["gender"] == "Female"  # any case in, capitalised out
    assert created["created_by"] == alice.id
    assert created["notes"] is None
    assert created["created_at"] and created["updated_at"]
    url = f"/api/patients/{created['id']}/"

    fetched = await client.get(url, headers=alice.headers)
    assert fetched.status_code == 200 and fetched.json() == created

    replaced = await client.put(
        url,
        headers=alice.headers,
        json={"name": "Ada King", "age": 37, "gender": "OTHER", "email": "ada@x.org"},
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert (body["name"], body["age"], body["gender"], body["email"]) == (
        "Ada King",
        37,
        "Other",
        "ada@x.org",
    )
    assert body["phone"] is None  # PUT replaces the whole record
    assert body["updated_at"] >= created["updated_at"]
    assert body["created_at"] == created["created_at"]

    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    assert_problem(await client.get(url, headers=alice.headers), 404)
    assert_problem(await client.delete(url, headers=alice.headers), 404)


async def test_trailing_slash_is_optional(client: Client, alice: Account) -> None:
    created = await create_patient(client, alice)
    for url in (f"/api/patients/{created['id']}", f"/api/patients/{created['id']}/"):
        assert (await client.get(url, headers=alice.headers)).status_code == 200
    for url in ("/api/patients", "/api/patients/"):
        assert (await client.get(url, headers=alice.headers)).status_code == 200


async def test_another_users_patient_does_not_exist(
    client: Client, alice: Account, bob: Account
) -> None:
    created = await create_patient(client, alice)
    url = f"/api/patients/{created['id']}/"
    assert_problem(await client.get(url, headers=bob.headers), 404)
    assert_problem(await client.put(url, json=PATIENT, headers=bob.headers), 404)
    assert_problem(await client.delete(url, headers=bob.headers), 404)
    assert_problem(await client.get(f"{url}doctors/", headers=bob.headers), 404)
    listed = await client.get("/api/patients/", headers=bob.headers)
    assert created["id"] not in [p["id"] for p in listed.json()]
    # ... and nothing changed for its owner.
    assert (await client.get(url, headers=alice.headers)).json() == created


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 256}, "name"),
        ({"age": -1}, "age"),
        ({"age": 151}, "age"),
        ({"age": "ten"}, "age"),
        ({"age": 3.5}, "age"),
        ({"gender": "robot"}, "gender"),
        ({"gender": None}, "gender"),
        ({"email": "nope"}, "email"),
        ({"phone": "1" * 33}, "phone"),
        ({"nmae": "Ada"}, "nmae"),  # a typo is refused, never dropped
        ({"owner": 1}, "owner"),
    ],
)
async def test_bad_patient_input_is_400_and_changes_nothing(
    client: Client, alice: Account, changes: dict[str, object], field: str
) -> None:
    response = await client.post(
        "/api/patients/", json={**PATIENT, **changes}, headers=alice.headers
    )
    assert_problem(response, 400, field)
    created = await create_patient(client, alice)
    url = f"/api/patients/{created['id']}/"
    assert_problem(
        await client.put(url, json={**PATIENT, **changes}, headers=alice.headers), 400, field
    )
    assert (await client.get(url, headers=alice.headers)).json() == created
    listed = await client.get("/api/patients/", headers=alice.headers)
    assert listed.headers["x-total-count"] == "1"


async def test_missing_required_fields(client: Client, alice: Account) -> None:
    for missing in ("name", "age", "gender"):
        body = {k: v for k, v in PATIENT.items() if k != missing}
        assert_problem(
            await client.post("/api/patients/", json=body, headers=alice.headers), 400, missing
        )


@pytest.mark.parametrize(
    ("raw_id", "status"),
    [
        ("abc", 404),
        ("0", 400),
        ("-1", 400),
        ("99999999999999999999", 400),
        ("9223372036854775807", 400),  # beyond the documented 2**53 - 1
        ("9007199254740991", 404),
        ("1.5", 404),
    ],
)
async def test_absurd_ids_are_4xx(client: Client, alice: Account, raw_id: str, status: int) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(
            method, f"/api/patients/{raw_id}/", json=PATIENT, headers=alice.headers
        )
        assert_problem(response, status)


async def test_list_is_paged_with_total_and_links(client: Client, alice: Account) -> None:
    ids = [(await create_patient(client, alice, name=f"P{i}"))["id"] for i in range(5)]
    first = await client.get("/api/patients/?limit=2", headers=alice.headers)
    assert first.status_code == 200
    assert [p["id"] for p in first.json()] == ids[:2]
    assert first.headers["x-total-count"] == "5"
    assert 'rel="next"' in first.headers["link"] and 'rel="prev"' not in first.headers["link"]
    assert "offset=2" in first.headers["link"]

    middle = await client.get("/api/patients/?limit=2&offset=2", headers=alice.headers)
    assert [p["id"] for p in middle.json()] == ids[2:4]
    assert 'rel="next"' in middle.headers["link"] and 'rel="prev"' in middle.headers["link"]

    last = await client.get("/api/patients/?limit=2&offset=4", headers=alice.headers)
    assert [p["id"] for p in last.json()] == ids[4:]
    assert 'rel="next"' not in last.headers["link"]

    beyond = await client.get("/api/patients/?offset=50", headers=alice.headers)
    assert beyond.json() == [] and beyond.headers["x-total-count"] == "5"

    whole = await client.get("/api/patients/", headers=alice.headers)
    assert len(whole.json()) == 5 and "link" not in whole.headers


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "limit=x", "offset=-1", "offset=99999999999999999999"]
)
async def test_bad_paging_parameters_are_400(client: Client, alice: Account, query: str) -> None:
    response = await client.get(f"/api/patients/?{query}", headers=alice.headers)
    assert_problem(response, 400, query.split("=", maxsplit=1)[0])


async def test_oversized_body_is_413(client: Client, alice: Account) -> None:
    response = await client.post(
        "/api/patients/", headers=alice.headers, json={**PATIENT, "notes": "x" * (1024 * 1024 + 10)}
    )
    assert_problem(response, 413)


async def test_every_bad_field_is_reported_at_once(client: Client, alice: Account) -> None:
    body = {"name": "", "age": 200, "gender": "robot", "email": "nope", "phone": "1" * 40}
    response = await client.post("/api/patients/", json=body, headers=alice.headers)
    assert_problem(response, 400, "name", "age", "gender", "email", "phone")


async def test_huge_numbers_are_400_not_500(client: Client, alice: Account) -> None:
    for age in (10**30, -(10**30)):
        response = await client.post(
            "/api/patients/", json={**PATIENT, "age": age}, headers=alice.headers
        )
        assert_problem(response, 400, "age")
