"""Patient-doctor mappings."""

from __future__ import annotations

import asyncio

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import Account, assert_problem, create_doctor, create_patient

Client = AsyncTestClient[Litestar]


async def _assign(client: Client, owner: Account, patient: int, doctor: int) -> dict[str, object]:
    response = await client.post(
        "/api/mappings/", json={"patient": patient, "doctor": doctor}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_assign_list_and_unassign(client: Client, alice: Account, bob: Account) -> None:
    patient = await create_patient(client, alice)
    house = await create_doctor(client, bob)  # any user's doctor may be assigned
    wilson = await create_doctor(client, alice, name="Dr. James Wilson", specialization="Oncology")
    mapping = await _assign(client, alice, patient["id"], house["id"])
    assert mapping["patient"] == patient["id"] and mapping["doctor"] == house["id"]
    assert mapping["doctor_detail"] == house
    assert "created_at" in mapping
    second = await _assign(client, alice, patient["id"], wilson["id"])

    mine = await client.get("/api/mappings/", headers=alice.headers)
    assert [m["id"] for m in mine.json()] == [mapping["id"], second["id"]]
    assert mine.headers["x-total-count"] == "2"

    of_patient = await client.get(f"/api/mappings/{patient['id']}/", headers=alice.headers)
    assert [m["doctor_detail"]["name"] for m in of_patient.json()] == [
        house["name"],
        wilson["name"],
    ]

    doctors = await client.get(f"/api/patients/{patient['id']}/doctors/", headers=alice.headers)
    assert doctors.json() == [house, wilson]

    gone = await client.delete(f"/api/mappings/{mapping['id']}/", headers=alice.headers)
    assert gone.status_code == 204
    doctors = await client.get(f"/api/patients/{patient['id']}/doctors/", headers=alice.headers)
    assert doctors.json() == [wilson]
    assert_problem(
        await client.delete(f"/api/mappings/{mapping['id']}/", headers=alice.headers), 404
    )


async def test_a_pair_exists_once(client: Client, alice: Account) -> None:
    patient = await create_patient(client, alice)
    doctor = await create_doctor(client, alice)
    await _assign(client, alice, patient["id"], doctor["id"])
    again = await client.post(
        "/api/mappings/",
        headers=alice.headers,
        json={"patient": patient["id"], "doctor": doctor["id"]},
    )
    assert_problem(again, 409)


async def test_racing_identical_assignments_give_one_201(client: Client, alice: Account) -> None:
    patient = await create_patient(client, alice)
    doctor = await create_doctor(client, alice)
    body = {"patient": patient["id"], "doctor": doctor["id"]}
    responses = await asyncio.gather(
        *(client.post("/api/mappings/", json=body, headers=alice.headers) for _ in range(6))
    )
    assert sorted(r.status_code for r in responses) == [201] + [409] * 5


async def test_foreign_patient_and_unknown_doctor_are_404(
    client: Client, alice: Account, bob: Account
) -> None:
    patient = await create_patient(client, alice)
    doctor = await create_doctor(client, alice)
    foreign = await client.post(
        "/api/mappings/",
        headers=bob.headers,
        json={"patient": patient["id"], "doctor": doctor["id"]},
    )
    assert_problem(foreign, 404)
    unknown = await client.post(
        "/api/mappings/",
        headers=alice.headers,
        json={"patient": patient["id"], "doctor": 9_000_000_000},
    )
    assert_problem(unknown, 404)
    assert (await client.get("/api/mappings/", headers=alice.headers)).json() == []


async def test_another_users_mappings_are_invisible(
    client: Client, alice: Account, bob: Account
) -> None:
    patient = await create_patient(client, alice)
    doctor = await create_doctor(client, alice)
    mapping = await _assign(client, alice, patient["id"], doctor["id"])
    assert (await client.get("/api/mappings/", headers=bob.headers)).json() == []
    assert_problem(await client.get(f"/api/mappings/{patient['id']}/", headers=bob.headers), 404)
    assert_problem(await client.delete(f"/api/mappings/{mapping['id']}/", headers=bob.headers), 404)
    still = await client.get(f"/api/mappings/{patient['id']}/", headers=alice.headers)
    assert [m["id"] for m in still.json()] == [mapping["id"]]


async def test_deleting_a_patient_or_doctor_removes_its_mappings(
    client: Client, alice: Account
) -> None:
    first, second = (await create_patient(client, alice), await create_patient(client, alice))
    doctor = await create_doctor(client, alice)
    other = await create_doctor(client, alice)
    await _assign(client, alice, first["id"], doctor["id"])
    await _assign(client, alice, second["id"], doctor["id"])
    kept = await _assign(client, alice, second["id"], other["id"])

    await client.delete(f"/api/patients/{first['id']}/", headers=alice.headers)
    assert len((await client.get("/api/mappings/", headers=alice.headers)).json()) == 2
    await client.delete(f"/api/doctors/{doctor['id']}/", headers=alice.headers)
    remaining = (await client.get("/api/mappings/", headers=alice.headers)).json()
    assert [m["id"] for m in remaining] == [kept["id"]]


async def test_bad_mapping_input_is_400(client: Client, alice: Account) -> None:
    for body, field in (
        ({"patient": 1}, "doctor"),
        ({"patient": "a", "doctor": 1}, "patient"),
        ({"patient": 0, "doctor": 1}, "patient"),
        ({"patient": 1, "doctor": 10**20}, "doctor"),
        ({"patient": 1, "doctor": 1, "note": "x"}, "note"),
    ):
        assert_problem(
            await client.post("/api/mappings/", json=body, headers=alice.headers), 400, field
        )
