"""The shared doctor directory."""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import DOCTOR, Account, assert_problem, create_doctor

Client = AsyncTestClient[Litestar]


async def test_doctor_crud_by_its_creator(client: Client, alice: Account) -> None:
    created = await create_doctor(client, alice, email="house@x.org")
    assert created["created_by"] == alice.id
    url = f"/api/doctors/{created['id']}/"
    assert (await client.get(url, headers=alice.headers)).json() == created
    replaced = await client.put(
        url,
        headers=alice.headers,
        json={"name": "Dr. Lisa Cuddy", "specialization": "Endocrinology"},
    )
    assert replaced.status_code == 200
    assert replaced.json()["specialization"] == "Endocrinology"
    assert replaced.json()["email"] is None
    assert (await client.delete(url, headers=alice.headers)).status_code == 204
    assert_problem(await client.get(url, headers=alice.headers), 404)


async def test_every_user_reads_every_doctor_but_only_the_creator_changes_it(
    client: Client, alice: Account, bob: Account
) -> None:
    created = await create_doctor(client, alice)
    url = f"/api/doctors/{created['id']}/"
    assert (await client.get(url, headers=bob.headers)).status_code == 200
    listed = await client.get("/api/doctors/?limit=1000", headers=bob.headers)
    assert int(listed.headers["x-total-count"]) >= 1
    total = int(listed.headers["x-total-count"])
    seen = {d["id"] for d in listed.json()}
    offset = 1000
    while offset < total:  # the shared directory may hold other tests' doctors
        more = await client.get(f"/api/doctors/?limit=1000&offset={offset}", headers=bob.headers)
        seen |= {d["id"] for d in more.json()}
        offset += 1000
    assert created["id"] in seen
    assert_problem(await client.put(url, json=DOCTOR | {"name": "Dr. X"}, headers=bob.headers), 403)
    assert_problem(await client.delete(url, headers=bob.headers), 403)
    assert (await client.get(url, headers=alice.headers)).json() == created


async def test_an_administrator_may_change_any_doctor(
    client: Client, alice: Account, admin: Account
) -> None:
    created = await create_doctor(client, alice)
    url = f"/api/doctors/{created['id']}/"
    replaced = await client.put(url, json=DOCTOR | {"name": "Dr. Y"}, headers=admin.headers)
    assert replaced.status_code == 200 and replaced.json()["name"] == "Dr. Y"
    assert (await client.delete(url, headers=admin.headers)).status_code == 204


async def test_unknown_doctor_is_404(client: Client, alice: Account) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = await client.request(
            method, "/api/doctors/9007199254740991/", json=DOCTOR, headers=alice.headers
        )
        assert_problem(response, 404)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"specialization": ""}, "specialization"),
        ({"specialization": "x" * 256}, "specialization"),
        ({"email": "bad"}, "email"),
        ({"specialisation": "Oncology"}, "specialisation"),
        ({"owner": 2}, "owner"),
    ],
)
async def test_bad_doctor_input_is_400(
    client: Client, alice: Account, changes: dict[str, object], field: str
) -> None:
    response = await client.post("/api/doctors/", json=DOCTOR | changes, headers=alice.headers)
    assert_problem(response, 400, field)
