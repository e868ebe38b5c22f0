"""PATCH, and versions as ETags with conditional requests, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import (
    PATIENT,
    Account,
    assert_problem,
    create_doctor,
    create_patient,
)

Client = AsyncTestClient[Litestar]
MERGE_PATCH = "application/merge-patch+json"


def url_of(record: dict[str, Any], kind: str = "patients") -> str:
    return f"/api/{kind}/{record['id']}/"


def matching(account: Account, tag: str) -> dict[str, str]:
    return {**account.headers, "If-Match": tag}


# --- ETags --------------------------------------------------------------------------------


async def test_every_answer_with_a_record_carries_its_version(
    client: Client, alice: Account
) -> None:
    created = await client.post("/api/patients/", json=PATIENT, headers=alice.headers)
    assert (created.status_code, created.headers["etag"]) == (201, '"1"')
    url = url_of(created.json())
    assert (await client.get(url, headers=alice.headers)).headers["etag"] == '"1"'
    replaced = await client.put(url, json=PATIENT, headers=alice.headers)
    assert replaced.headers["etag"] == '"2"'
    patched = await client.patch(url, json={"age": 40}, headers=alice.headers)
    assert patched.headers["etag"] == '"3"'
    assert (await client.get(url, headers=alice.headers)).headers["etag"] == '"3"'
    doctor = await client.post(
        "/api/doctors/", json={"name": "Dr. A", "specialization": "B"}, headers=alice.headers
    )
    assert doctor.headers["etag"] == '"1"'


@pytest.mark.parametrize(
    ("held", "status"),
    [
        ('"1"', 304),
        ('W/"1"', 304),  # If-None-Match compares weakly
        ('"7", "1"', 304),
        ("*", 304),
        ('"2"', 200),
        ("not a tag", 200),  # ignored
    ],
)
async def test_a_read_of_an_unchanged_record_is_304_without_a_body(
    client: Client, alice: Account, held: str, status: int
) -> None:
    url = url_of(await create_patient(client, alice))
    response = await client.get(url, headers={**alice.headers, "If-None-Match": held})
    assert response.status_code == status
    assert response.headers["etag"] == '"1"'
    if status == 304:
        assert response.content == b""
    else:
        assert response.json()["name"] == PATIENT["name"]


async def test_a_304_is_still_an_audited_read(
    client: Client, alice: Account, admin: Account
) -> None:
    patient = await create_patient(client, alice)
    held = {**alice.headers, "If-None-Match": '"1"'}
    assert (await client.get(url_of(patient), headers=held)).status_code == 304
    trail = await client.get(
        "/api/audit/",
        params={"resource_type": "patient", "resource_id": patient["id"], "action": "patient.read"},
        headers=admin.headers,
    )
    assert [e["outcome"] for e in trail.json()] == ["success"]


# --- If-Match -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("kind", ["patients", "doctors"])
async def test_a_stale_if_match_is_412_and_changes_nothing(
    client: Client, alice: Account, method: str, kind: str
) -> None:
    record = await (create_patient if kind == "patients" else create_doctor)(client, alice)
    url = url_of(record, kind)
    body = {"name": "Changed"} if method == "PATCH" else {**record, "name": "Changed"}
    await client.patch(url, json={"name": "Second"}, headers=alice.headers)  # now version 2
    before = (await client.get(url, headers=alice.headers)).json()

    for stale in ('"1"', 'W/"2"', '"x"'):  # old, weak (never matches), not one of ours
        response = await client.request(
            method, url, json=None if method == "DELETE" else body, headers=matching(alice, stale)
        )
        problem = assert_problem(response, 412)
        assert "version 2" in problem["detail"]
    assert (await client.get(url, headers=alice.headers)).json() == before

    current = await client.request(
        method, url, json=None if method == "DELETE" else body, headers=matching(alice, '"2"')
    )
    assert current.status_code == (204 if method == "DELETE" else 200), current.text
    if method != "DELETE":
        assert current.headers["etag"] == '"3"'


async def test_if_match_star_or_absent_changes_unconditionally(
    client: Client, alice: Account
) -> None:
    url = url_of(await create_patient(client, alice))
    assert (await client.put(url, json=PATIENT, headers=matching(alice, "*"))).status_code == 200
    assert (await client.put(url, json=PATIENT, headers=alice.headers)).status_code == 200
    assert (await client.get(url, headers=alice.headers)).headers["etag"] == '"3"'


@pytest.mark.parametrize("header", ["3", '"1", "2"', '"unterminated'])
async def test_a_malformed_if_match_is_400_naming_it(
    client: Client, alice: Account, header: str
) -> None:
    url = url_of(await create_patient(client, alice))
    response = await client.put(url, json=PATIENT, headers=matching(alice, header))
    assert_problem(response, 400, "If-Match")
    assert (await client.get(url, headers=alice.headers)).headers["etag"] == '"1"'


async def test_another_users_record_is_404_whatever_the_version(
    client: Client, alice: Account, bob: Account
) -> None:
    url = url_of(await create_patient(client, alice))
    for method in ("PUT", "PATCH", "DELETE"):
        body = None if method == "DELETE" else PATIENT
        response = await client.request(method, url, json=body, headers=matching(bob, '"1"'))
        assert_problem(response, 404)


async def test_two_changes_from_one_version_have_exactly_one_winner(
    client: Client, alice: Account
) -> None:
    """Real concurrency: both requests are in flight at once, on either database."""
    for method in ("PUT", "PATCH"):
        url = url_of(await create_patient(client, alice))
        responses = await asyncio.gather(
            *(
                client.request(
                    method, url, json={**PATIENT, "name": name}, headers=matching(alice, '"1"')
                )
                for name in ("First", "Second")
            )
        )
        assert sorted(r.status_code for r in responses) == [200, 412], method
        winner = next(r for r in responses if r.status_code == 200)
        stored = await client.get(url, headers=alice.headers)
        assert stored.json()["name"] == winner.json()["name"]
        assert stored.headers["etag"] == '"2"'


async def test_concurrent_patches_without_if_match_both_apply(
    client: Client, alice: Account
) -> None:
    """Each PATCH is merged into the record as it is when written: neither field is lost."""
    url = url_of(await create_patient(client, alice))
    await asyncio.gather(
        client.patch(url, json={"phone": "555"}, headers=alice.headers),
        client.patch(url, json={"notes": "seen"}, headers=alice.headers),
    )
    stored = (await client.get(url, headers=alice.headers)).json()
    assert (stored["phone"], stored["notes"]) == ("555", "seen")


# --- PATCH --------------------------------------------------------------------------------


async def test_patch_changes_only_what_it_names(client: Client, alice: Account) -> None:
    created = await create_patient(client, alice, phone="123", notes="keep me")
    response = await client.patch(url_of(created), json={"age": 41}, headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {**created, "age": 41, "updated_at": body["updated_at"]}


async def test_null_clears_an_optional_field_and_is_400_on_a_required_one(
    client: Client, alice: Account
) -> None:
    created = await create_patient(client, alice, phone="123", email="a@b.org")
    url = url_of(created)
    cleared = await client.patch(url, json={"phone": None, "email": ""}, headers=alice.headers)
    assert (cleared.json()["phone"], cleared.json()["email"]) == (None, None)
    for field in ("name", "age", "gender"):
        response = await client.patch(url, json={field: None}, headers=alice.headers)
        assert_problem(response, 400, field)
    assert (await client.get(url, headers=alice.headers)).headers["etag"] == '"2"'


async def test_merge_patch_and_forms_are_accepted(client: Client, alice: Account) -> None:
    url = url_of(await create_patient(client, alice, phone="123"))
    merge = await client.patch(
        url,
        content=b'{"phone": null, "gender": "OTHER"}',
        headers={**alice.headers, "Content-Type": MERGE_PATCH},
    )
    assert merge.status_code == 200, merge.text
    assert (merge.json()["phone"], merge.json()["gender"]) == (None, "Other")
    form = await client.patch(url, data={"age": "50"}, headers=alice.headers)
    assert (form.status_code, form.json()["age"]) == (200, 50)


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"age": 151}, ["age"]),
        ({"age": "ten", "gender": "robot"}, ["age"]),  # a type error is named first
        ({"gender": "robot"}, ["gender"]),
        ({"email": "nope"}, ["email"]),
        ({"name": "  "}, ["name"]),
        ({"nmae": "x", "agee": 3}, ["nmae", "agee"]),
    ],
)
async def test_bad_patches_are_400_and_change_nothing(
    client: Client, alice: Account, body: dict[str, Any], fields: list[str]
) -> None:
    created = await create_patient(client, alice)
    url = url_of(created)
    assert_problem(await client.patch(url, json=body, headers=alice.headers), 400, *fields)
    assert (await client.get(url, headers=alice.headers)).json() == created


async def test_an_empty_patch_body_changes_nothing(client: Client, alice: Account) -> None:
    """No body is read as {} (as DRF reads it, and as an empty form already was): a PATCH
    with nothing to change, as the document's optional PATCH body says."""
    created = await create_patient(client, alice)
    headers = {**alice.headers, "Content-Type": "application/json"}
    response = await client.patch(url_of(created), content=b"", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {**created, "updated_at": response.json()["updated_at"]}


async def test_a_doctor_is_patched_by_its_creator_only(
    client: Client, alice: Account, bob: Account
) -> None:
    doctor = await create_doctor(client, alice, email="house@x.org")
    url = url_of(doctor, "doctors")
    assert_problem(await client.patch(url, json={"name": "Mine"}, headers=bob.headers), 403)
    changed = await client.patch(url, json={"email": None}, headers=alice.headers)
    assert changed.status_code == 200
    assert changed.json() == {**doctor, "email": None, "updated_at": changed.json()["updated_at"]}
    assert_problem(
        await client.patch(url, json={"specialization": None}, headers=alice.headers),
        400,
        "specialization",
    )


async def test_a_patch_is_audited_as_an_update(
    client: Client, alice: Account, admin: Account
) -> None:
    patient = await create_patient(client, alice)
    await client.patch(url_of(patient), json={"age": 3}, headers=alice.headers)
    await client.patch(url_of(patient), json={"age": 3}, headers=matching(alice, '"1"'))
    trail = await client.get(
        "/api/audit/",
        params={"resource_type": "patient", "resource_id": patient["id"]},
        headers=admin.headers,
    )
    assert [(e["action"], e["outcome"]) for e in reversed(trail.json())] == [
        ("patient.create", "success"),
        ("patient.update", "success"),
        ("patient.update", "stale"),
    ]
