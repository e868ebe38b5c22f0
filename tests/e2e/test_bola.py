"""Broken object-level authorization: every route that takes an id, tried by the wrong user.

Alice owns a patient, a doctor and a mapping of the two. Another user (Bob, or an
administrator where the contract gives administrators no extra right) then tries each route
on Alice's ids. The contract's answers: a patient or mapping of another user does not exist
for the caller (404, word for word the answer for an id that never existed, so it is no
existence oracle), and a doctor may be read by all but changed only by its creator or an
administrator (403). Afterwards Alice's data must be byte-for-byte what it was, updated_at
included, and neither user's mappings may have changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import Account, assert_problem, create_doctor, create_patient

Client = AsyncTestClient[Litestar]

# The largest valid id: accepted by every route, and never a row in a test database.
NEVER = 2**53 - 1  # the largest id the API accepts; never issued here


@dataclass(frozen=True)
class Route:
    """A request on one of Alice's objects; ``{patient}`` etc. are filled in with ids."""

    name: str
    method: str
    path: str
    body: dict[str, Any] | None
    target: str  # which id the route is about: patient, doctor or mapping
    foreign_status: int = 404

    def request(self, ids: dict[str, int], *, slash: bool) -> tuple[str, str, Any]:
        path = self.path.format(**ids)
        if not slash:
            path = path.rstrip("/")
        body = None
        if self.body is not None:
            body = {k: ids[v[1:-1]] if _is_slot(v) else v for k, v in self.body.items()}
        return self.method, path, body


def _is_slot(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("{") and value.endswith("}")


NEW_PATIENT = {"name": "Mallory's patient", "age": 99, "gender": "other", "notes": "pwned"}
NEW_DOCTOR = {"name": "Dr. Mallory", "specialization": "Intrusion"}

ID_ROUTES = [
    Route("GET patient", "GET", "/api/patients/{patient}/", None, "patient"),
    Route("PUT patient", "PUT", "/api/patients/{patient}/", NEW_PATIENT, "patient"),
    Route("DELETE patient", "DELETE", "/api/patients/{patient}/", None, "patient"),
    Route("GET patient doctors", "GET", "/api/patients/{patient}/doctors/", None, "patient"),
    Route("GET patient mappings", "GET", "/api/mappings/{patient}/", None, "patient"),
    Route("DELETE mapping", "DELETE", "/api/mappings/{mapping}/", None, "mapping"),
    # The intruder's own doctor on Alice's patient...
    Route(
        "POST mapping, own doctor",
        "POST",
        "/api/mappings/",
        {"patient": "{patient}", "doctor": "{own_doctor}"},
        "patient",
    ),
    # ...and the pair Alice already has: a 409 here would confirm the patient exists.
    Route(
        "POST mapping, existing pair",
        "POST",
        "/api/mappings/",
        {"patient": "{patient}", "doctor": "{doctor}"},
        "patient",
    ),
    Route("PUT doctor", "PUT", "/api/doctors/{doctor}/", NEW_DOCTOR, "doctor", 403),
    Route("DELETE doctor", "DELETE", "/api/doctors/{doctor}/", None, "doctor", 403),
]


@dataclass(frozen=True)
class Attempt:
    route: Route
    intruder: str  # "bob", or "admin" where the contract gives administrators no extra right
    slash: bool  # with or without the (optional) trailing slash


def _matrix() -> list[Any]:
    cases = []
    for route in ID_ROUTES:
        # An administrator may change any doctor (test_doctors.py), so only Bob tries those.
        intruders = ["bob"] if route.target == "doctor" else ["bob", "admin"]
        for intruder in intruders:
            for slash in (True, False):
                case_id = f"{route.name} as {intruder}{'' if slash else ', no slash'}"
                cases.append(pytest.param(Attempt(route, intruder, slash), id=case_id))
    return cases


@pytest.fixture
def intruders(bob: Account, admin: Account) -> dict[str, Account]:
    return {"bob": bob, "admin": admin}


@dataclass
class World:
    patient: int
    doctor: int
    mapping: int


async def _alices_world(client: Client, alice: Account) -> World:
    patient = await create_patient(
        client, alice, phone="+44 20 7946 0000", email="ada@example.org", notes="private"
    )
    doctor = await create_doctor(client, alice)
    mapping = await client.post(
        "/api/mappings/",
        json={"patient": patient["id"], "doctor": doctor["id"]},
        headers=alice.headers,
    )
    assert mapping.status_code == 201, mapping.text
    return World(patient["id"], doctor["id"], mapping.json()["id"])


async def _send(
    client: Client, who: Account, route: Route, ids: dict[str, int], *, slash: bool
) -> Any:
    method, path, body = route.request(ids, slash=slash)
    return await client.request(method, path, json=body, headers=who.headers)


async def _views(client: Client, who: Account, urls: list[str]) -> dict[str, Any]:
    """Status, total and exact bytes of each URL as ``who`` sees it."""
    seen = {}
    for url in urls:
        response = await client.get(url, headers=who.headers)
        seen[url] = (response.status_code, response.headers.get("x-total-count"), response.content)
    return seen


def _alices_urls(world: World) -> list[str]:
    return [
        f"/api/patients/{world.patient}/",
        "/api/patients/",
        f"/api/patients/{world.patient}/doctors/",
        "/api/mappings/",
        f"/api/mappings/{world.patient}/",
        f"/api/doctors/{world.doctor}/",
    ]


OWN_LISTS = ["/api/patients/", "/api/mappings/"]


def _without_id(response: Any, value: int) -> dict[str, Any]:
    """A problem body with the id it is about blanked out, to compare two 404s."""
    body: dict[str, Any] = response.json()
    return {
        key: re.sub(rf"(?<!\d){value}(?!\d)", "<id>", item) if isinstance(item, str) else item
        for key, item in body.items()
    }


@pytest.mark.parametrize("attempt", _matrix())
async def test_another_user_cannot_read_or_change_by_id(
    client: Client, alice: Account, intruders: dict[str, Account], attempt: Attempt
) -> None:
    route, intruder, slash = attempt.route, intruders[attempt.intruder], attempt.slash
    world = await _alices_world(client, alice)
    own_doctor = await create_doctor(client, intruder, **NEW_DOCTOR)
    ids = {
        "patient": world.patient,
        "doctor": world.doctor,
        "mapping": world.mapping,
        "own_doctor": own_doctor["id"],
    }
    alices_before = await _views(client, alice, _alices_urls(world))
    assert all(status == 200 for status, _, _ in alices_before.values()), alices_before
    intruders_before = await _views(client, intruder, OWN_LISTS)

    response = await _send(client, intruder, route, ids, slash=slash)

    assert_problem(response, route.foreign_status)
    if route.foreign_status == 404:
        never = await _send(client, intruder, route, {**ids, route.target: NEVER}, slash=slash)
        assert_problem(never, 404)
        assert _without_id(response, ids[route.target]) == _without_id(never, NEVER)
    assert await _views(client, alice, _alices_urls(world)) == alices_before
    assert await _views(client, intruder, OWN_LISTS) == intruders_before


@pytest.mark.parametrize("slash", [True, False], ids=["slash", "no slash"])
@pytest.mark.parametrize("action", ["deactivate", "activate"])
async def test_another_user_cannot_deactivate_or_activate_an_account(
    client: Client, alice: Account, bob: Account, action: str, slash: bool
) -> None:
    """Administrators only: Bob gets 403 whatever the id, and Alice can still sign in."""
    me_before = await client.get("/api/auth/me/", headers=alice.headers)

    def path(user_id: int) -> str:
        return f"/api/users/{user_id}/{action}" + ("/" if slash else "")

    response = await client.post(path(alice.id), headers=bob.headers)

    assert_problem(response, 403)
    never = await client.post(path(NEVER), headers=bob.headers)
    assert _without_id(response, alice.id) == _without_id(never, NEVER)
    me_after = await client.get("/api/auth/me/", headers=alice.headers)
    assert (me_after.status_code, me_after.content) == (me_before.status_code, me_before.content)
    refreshed = await client.post("/api/auth/token/refresh/", json={"refresh": alice.refresh})
    assert refreshed.status_code == 200, refreshed.text  # her login's chain was not revoked
    login = {"username": alice.username, "password": alice.password}
    assert (await client.post("/api/auth/login/", json=login)).status_code == 200


# --- ids of deleted resources ----------------------------------------------------------------

AFTER_DELETION = [
    # (what Alice deletes, the route she then tries on its id)
    ("patient", Route("GET patient", "GET", "/api/patients/{patient}/", None, "patient")),
    ("patient", Route("PUT patient", "PUT", "/api/patients/{patient}/", NEW_PATIENT, "patient")),
    ("patient", Route("DELETE patient", "DELETE", "/api/patients/{patient}/", None, "patient")),
    ("patient", Route("GET doctors", "GET", "/api/patients/{patient}/doctors/", None, "patient")),
    ("patient", Route("GET mappings", "GET", "/api/mappings/{patient}/", None, "patient")),
    ("patient", Route("DELETE its mapping", "DELETE", "/api/mappings/{mapping}/", None, "mapping")),
    (
        "patient",
        Route(
            "POST mapping",
            "POST",
            "/api/mappings/",
            {"patient": "{patient}", "doctor": "{doctor}"},
            "patient",
        ),
    ),
    ("doctor", Route("GET doctor", "GET", "/api/doctors/{doctor}/", None, "doctor")),
    ("doctor", Route("PUT doctor", "PUT", "/api/doctors/{doctor}/", NEW_DOCTOR, "doctor")),
    ("doctor", Route("DELETE doctor", "DELETE", "/api/doctors/{doctor}/", None, "doctor")),
    ("doctor", Route("DELETE its mapping", "DELETE", "/api/mappings/{mapping}/", None, "mapping")),
    (
        "doctor",
        Route(
            "POST mapping",
            "POST",
            "/api/mappings/",
            {"patient": "{patient}", "doctor": "{doctor}"},
            "doctor",
        ),
    ),
    ("mapping", Route("DELETE mapping", "DELETE", "/api/mappings/{mapping}/", None, "mapping")),
]


@pytest.mark.parametrize(
    ("deleted", "route"),
    [
        pytest.param(kind, route, id=f"{kind} deleted, {route.name}")
        for kind, route in AFTER_DELETION
    ],
)
async def test_ids_of_deleted_resources_are_404(
    client: Client, alice: Account, deleted: str, route: Route
) -> None:
    world = await _alices_world(client, alice)
    ids = {"patient": world.patient, "doctor": world.doctor, "mapping": world.mapping}
    paths = {
        "patient": f"/api/patients/{world.patient}/",
        "doctor": f"/api/doctors/{world.doctor}/",
        "mapping": f"/api/mappings/{world.mapping}/",
    }
    gone = await client.delete(paths[deleted], headers=alice.headers)
    assert gone.status_code == 204, gone.text

    assert_problem(await _send(client, alice, route, ids, slash=True), 404)
    # Nothing came back to life, and the mapping went with whatever was deleted.
    assert (await client.get("/api/mappings/", headers=alice.headers)).json() == []
    if deleted != "patient":
        patient = await client.get(paths["patient"], headers=alice.headers)
        assert patient.status_code == 200
    if deleted != "doctor":
        doctor = await client.get(paths["doctor"], headers=alice.headers)
        assert doctor.status_code == 200


# --- lists --------------------------------------------------------------------------------------


@pytest.mark.parametrize("intruder_name", ["bob", "admin"])
@pytest.mark.parametrize("query", ["", "?limit=1000", "?limit=1&offset=0", "?offset=1"])
async def test_lists_never_show_another_users_patients_or_mappings(
    client: Client,
    alice: Account,
    intruders: dict[str, Account],
    intruder_name: str,
    query: str,
) -> None:
    intruder = intruders[intruder_name]
    world = await _alices_world(client, alice)
    await _alices_world(client, alice)  # a second of each, so paging has something to page
    own = await create_patient(client, intruder, name="Mallory")

    patients = await client.get(f"/api/patients/{query}", headers=intruder.headers)
    mappings = await client.get(f"/api/mappings/{query}", headers=intruder.headers)

    assert patients.status_code == 200, patients.text
    assert patients.headers["x-total-count"] == "1"
    assert [p["id"] for p in patients.json()] == ([] if "offset=1" in query else [own["id"]])
    assert "next" not in patients.headers.get("link", "")
    assert mappings.status_code == 200, mappings.text
    assert mappings.headers["x-total-count"] == "0"
    assert mappings.json() == []
    # Alice's data is nowhere in what the intruder got, under any field.
    for leaked in (patients, mappings):
        assert "Ada Lovelace" not in leaked.text and "ada@example.org" not in leaked.text
    # While Alice sees both of hers, and her doctor is in the shared directory for everyone.
    assert (await client.get("/api/patients/", headers=alice.headers)).headers[
        "x-total-count"
    ] == "2"
    doctor = await client.get(f"/api/doctors/{world.doctor}/", headers=intruder.headers)
    assert doctor.status_code == 200
