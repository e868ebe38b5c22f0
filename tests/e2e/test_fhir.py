"""The FHIR R4 face end to end: every resource it returns is validated with fhir.resources."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlsplit

import pytest
from fhir.resources.R4B import get_fhir_model_class
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import Account, create_doctor, create_patient, sign_up

Client = AsyncTestClient[Litestar]
FHIR = "/api/fhir"
FHIR_JSON = "application/fhir+json"
BASE = "http://testserver.local/api/fhir"
AGE_URL = f"{BASE}/StructureDefinition/patient-age"
NOTES_URL = f"{BASE}/StructureDefinition/patient-notes"


def resource(response: Any, status: int = 200, kind: str | None = None) -> dict[str, Any]:
    """The response's FHIR resource, after checking its status and its validity as R4."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = response.json()
    if kind is not None:
        assert body["resourceType"] == kind
    get_fhir_model_class(body["resourceType"]).model_validate(body)
    return body


def outcome(response: Any, status: int, *expressions: str) -> dict[str, Any]:
    """An OperationOutcome with ``status`` whose issues name at least ``expressions``."""
    body = resource(response, status, "OperationOutcome")
    named = {e for issue in body["issue"] for e in issue.get("expression", [])}
    assert set(expressions) <= named, f"expected {expressions}, got {body}"
    return body


def fhir_patient(**elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "name": [{"text": "Grace Hopper"}],
        "gender": "female",
        "extension": [{"url": AGE_URL, "valueInteger": 85}],
        **elements,
    }


def ids(bundle: dict[str, Any]) -> list[str]:
    return [
        entry["resource"]["id"]
        for entry in bundle.get("entry", [])
        if entry["search"]["mode"] == "match"
    ]


def links(bundle: dict[str, Any]) -> dict[str, str]:
    return {link["relation"]: link["url"] for link in bundle.get("link", [])}


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


# --- metadata -----------------------------------------------------------------------------


async def test_the_capability_statement_lists_exactly_what_is_served(client: Client) -> None:
    statement = resource(await client.get(f"{FHIR}/metadata"), kind="CapabilityStatement")
    assert statement["fhirVersion"] == "4.0.1"
    served = {
        r["type"]: (
            {i["code"] for i in r["interaction"]},
            {p["name"] for p in r.get("searchParam", [])},
        )
        for r in statement["rest"][0]["resource"]
    }
    assert served == {
        "Patient": (
            {"read", "vread", "search-type", "create", "update", "delete"},
            {"name", "gender"},
        ),
        "Practitioner": ({"read", "search-type"}, {"name"}),
        "CareTeam": ({"read", "search-type"}, {"patient"}),
    }


async def test_only_json_is_served(client: Client) -> None:
    outcome(await client.get(f"{FHIR}/metadata?_format=xml"), 406, "_format")
    resource(await client.get(f"{FHIR}/metadata?_format=json"), kind="CapabilityStatement")


# --- Patient read -------------------------------------------------------------------------


async def test_a_patient_reads_as_a_fhir_patient(client: Client, alice: Account) -> None:
    patient = await create_patient(
        client,
        alice,
        name="Ada King Lovelace",
        phone="+44 20 7946 0000",
        email="ada@example.org",
        address="12 St James's Square, London",
        notes="Analytical",
    )
    response = await client.get(f"{FHIR}/Patient/{patient['id']}", headers=alice.headers)
    body = resource(response, kind="Patient")
    assert response.headers["etag"] == 'W/"1"'
    assert body["id"] == str(patient["id"])
    assert body["meta"]["versionId"] == "1"
    assert body["name"] == [
        {"text": "Ada King Lovelace", "family": "Lovelace", "given": ["Ada", "King"]}
    ]
    assert body["gender"] == "female"
    assert body["telecom"] == [
        {"system": "phone", "value": "+44 20 7946 0000"},
        {"system": "email", "value": "ada@example.org"},
    ]
    assert body["address"] == [{"text": "12 St James's Square, London"}]
    assert body["extension"] == [
        {"url": AGE_URL, "valueInteger": 36},
        {"url": NOTES_URL, "valueString": "Analytical"},
    ]


async def test_a_current_copy_is_304(client: Client, alice: Account) -> None:
    patient = await create_patient(client, alice)
    url = f"{FHIR}/Patient/{patient['id']}"
    held = await client.get(url, headers={**alice.headers, "If-None-Match": 'W/"1"'})
    assert (held.status_code, held.content) == (304, b"")


@pytest.mark.parametrize("wrong", ["999999999", "abc", "0", "-1", "1.5", "9" * 20])
async def test_an_unknown_patient_is_404(client: Client, alice: Account, wrong: str) -> None:
    outcome(await client.get(f"{FHIR}/Patient/{wrong}", headers=alice.headers), 404)


@pytest.mark.parametrize(
    "route",
    [
        ("GET", "Patient/{p}"),
        ("PUT", "Patient/{p}"),
        ("DELETE", "Patient/{p}"),
        ("GET", "CareTeam/{p}"),
    ],
)
async def test_another_users_patient_is_404_on_every_route(
    client: Client, alice: Account, bob: Account, route: tuple[str, str]
) -> None:
    patient = await create_patient(client, alice)
    method, path = route
    url = f"{FHIR}/{path.format(p=patient['id'])}"
    body = fhir_patient(id=str(patient["id"])) if method == "PUT" else None
    response = await client.request(method, url, headers=bob.headers, json=body)
    outcome(response, 404)
    still = await client.get(f"/api/patients/{patient['id']}/", headers=alice.headers)
    assert still.json()["name"] == patient["name"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "Patient/1"),
        ("GET", "Patient"),
        ("POST", "Patient"),
        ("PUT", "Patient/1"),
        ("DELETE", "Patient/1"),
        ("GET", "Practitioner/1"),
        ("GET", "Practitioner"),
        ("GET", "CareTeam/1"),
        ("GET", "CareTeam?patient=1"),
    ],
)
@pytest.mark.parametrize("token", [None, "not-a-token"])
async def test_every_route_but_metadata_needs_an_access_token(
    client: Client, method: str, path: str, token: str | None
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = fhir_patient(id="1") if method in {"POST", "PUT"} else None
    response = await client.request(method, f"{FHIR}/{path}", headers=headers, json=body)
    outcome(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_a_refresh_token_is_not_an_access_token(client: Client, alice: Account) -> None:
    headers = {"Authorization": f"Bearer {alice.refresh}"}
    outcome(await client.get(f"{FHIR}/Patient", headers=headers), 401)


# --- Patient search -----------------------------------------------------------------------


async def test_a_search_finds_the_callers_patients_only(
    client: Client, alice: Account, bob: Account
) -> None:
    mine = await create_patient(client, alice, name="Émilie du Châtelet", gender="Female")
    await create_patient(client, alice, name="Emil Fischer", gender="Male")
    await create_patient(client, bob, name="Emilie Bob's", gender="Female")
    response = await client.get(f"{FHIR}/Patient?name=emilie&gender=female", headers=alice.headers)
    bundle = resource(response, kind="Bundle")
    assert (bundle["type"], bundle["total"], ids(bundle)) == ("searchset", 1, [str(mine["id"])])
    assert bundle["entry"][0]["fullUrl"] == f"{BASE}/Patient/{mine['id']}"
    everything = resource(await client.get(f"{FHIR}/Patient", headers=bob.headers))
    assert str(mine["id"]) not in ids(everything)
    system = "http://hl7.org/fhir/administrative-gender"
    for spelled in ("name:contains=MILIE", f"gender={system}|female"):
        found = resource(await client.get(f"{FHIR}/Patient?{spelled}", headers=alice.headers))
        assert ids(found) == [str(mine["id"])], spelled


@pytest.mark.parametrize(("count", "expected_pages"), [(3, 3), (7, 1), (2, 4)])
async def test_a_paging_walk_gives_every_patient_once(
    client: Client, count: int, expected_pages: int
) -> None:
    owner = await sign_up(client)
    made = [str((await create_patient(client, owner, name=f"P {i}"))["id"]) for i in range(7)]
    seen: list[str] = []
    url: str | None = f"{FHIR}/Patient?_count={count}&_sort=_id"
    pages = 0
    while url is not None:
        bundle = resource(await client.get(url, headers=owner.headers), kind="Bundle")
        assert bundle["total"] == 7
        seen += ids(bundle)
        found = links(bundle)
        assert ("previous" in found) == (pages > 0)
        url = local(found["next"]) if "next" in found else None
        pages += 1
    assert (seen, pages) == (made, expected_pages)
    by_page = resource(
        await client.get(f"{FHIR}/Patient?_count=3&_page=2&_sort=_id", headers=owner.headers)
    )
    assert ids(by_page) == made[3:6]
    backwards = resource(await client.get(f"{FHIR}/Patient?_sort=-_id", headers=owner.headers))
    assert ids(backwards) == made[::-1]


async def test_summary_count_gives_the_total_alone(client: Client) -> None:
    owner = await sign_up(client)
    for _ in range(3):
        await create_patient(client, owner)
    for query in ("_summary=count", "_count=0"):
        bundle = resource(await client.get(f"{FHIR}/Patient?{query}", headers=owner.headers))
        assert (bundle["total"], bundle.get("entry")) == (3, None)


async def test_unknown_parameters_are_listed_or_refused_when_strict(
    client: Client, alice: Account
) -> None:
    await create_patient(client, alice)
    url = f"{FHIR}/Patient?birthdate=1990&_elements=name"
    bundle = resource(await client.get(url, headers=alice.headers), kind="Bundle")
    outcomes = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    named = {x for issue in outcomes[0]["issue"] for x in issue["expression"]}
    assert named == {"birthdate", "_elements"}
    for preference in ("handling=strict", "return=minimal, handling = strict"):
        strict = {**alice.headers, "Prefer": preference}
        outcome(await client.get(url, headers=strict), 400, "birthdate", "_elements")
    resource(await client.get(f"{FHIR}/Patient?name=a", headers=strict), kind="Bundle")


@pytest.mark.parametrize(
    ("query", "expression"),
    [
        ("gender=female-ish", "gender"),
        ("_count=many", "_count"),
        ("_count=1001", "_count"),
        ("_offset=-1", "_offset"),
        ("_page=0", "_page"),
        ("_page=2&_offset=3", "_page"),
        ("_sort=notes", "_sort"),
        ("name=a&name=b", "name"),
        ("name=" + "x" * 300, "name"),
    ],
)
async def test_a_bad_search_is_400(
    client: Client, alice: Account, query: str, expression: str
) -> None:
    outcome(await client.get(f"{FHIR}/Patient?{query}", headers=alice.headers), 400, expression)


# --- Patient create, update, delete -------------------------------------------------------


async def test_a_patient_created_through_fhir_reads_back_through_rest(
    client: Client, alice: Account
) -> None:
    sent = fhir_patient(
        name=[{"use": "official", "given": ["Grace", "Brewster"], "family": "Hopper"}],
        telecom=[
            {"system": "email", "value": "grace@example.org"},
            {"system": "phone", "value": "+1 555 0100", "use": "home"},
        ],
        address=[{"line": ["1 Navy Way"], "city": "Arlington", "country": "US"}],
        extension=[
            {"url": AGE_URL, "valueInteger": 85},
            {"url": NOTES_URL, "valueString": "COBOL"},
        ],
    )
    response = await client.post(f"{FHIR}/Patient", json=sent, headers=alice.headers)
    created = resource(response, 201, "Patient")
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"] == f"{BASE}/Patient/{created['id']}/_history/1"
    rest = (await client.get(f"/api/patients/{created['id']}/", headers=alice.headers)).json()
    assert {
        k: rest[k] for k in ("name", "age", "gender", "phone", "email", "address", "notes")
    } == {
        "name": "Grace Brewster Hopper",
        "age": 85,
        "gender": "Female",
        "phone": "+1 555 0100",
        "email": "grace@example.org",
        "address": "1 Navy Way, Arlington, US",
        "notes": "COBOL",
    }
    assert rest["created_by"] == alice.id


async def test_a_patient_written_through_rest_reads_the_same_through_fhir(
    client: Client, alice: Account
) -> None:
    patient = await create_patient(
        client, alice, name="Alan Turing", age=41, gender="male", email="alan@example.org"
    )
    read = resource(await client.get(f"{FHIR}/Patient/{patient['id']}", headers=alice.headers))
    back = await client.put(f"{FHIR}/Patient/{patient['id']}", json=read, headers=alice.headers)
    assert resource(back)["meta"]["versionId"] == "2"
    rest = (await client.get(f"/api/patients/{patient['id']}/", headers=alice.headers)).json()
    same = ("name", "age", "gender", "phone", "email", "address", "notes")
    assert {k: rest[k] for k in same} == {k: patient[k] for k in same}


async def test_a_birth_date_is_read_as_an_age(client: Client, alice: Account) -> None:
    today = date.today()
    born = today.replace(year=today.year - 30)
    sent = fhir_patient(extension=None, birthDate=born.isoformat())
    del sent["extension"]
    created = resource(await client.post(f"{FHIR}/Patient", json=sent, headers=alice.headers), 201)
    assert created["extension"][0] == {"url": AGE_URL, "valueInteger": 30}
    disagreeing = fhir_patient(birthDate=born.isoformat())  # the extension says 85
    response = await client.post(f"{FHIR}/Patient", json=disagreeing, headers=alice.headers)
    outcome(response, 400, "Patient.birthDate")


async def test_an_update_honours_if_match_and_the_version_in_the_body(
    client: Client, alice: Account
) -> None:
    patient = await create_patient(client, alice)
    url = f"{FHIR}/Patient/{patient['id']}"
    body = fhir_patient(id=str(patient["id"]))
    changed = await client.put(url, json=body, headers={**alice.headers, "If-Match": 'W/"1"'})
    assert (resource(changed)["meta"]["versionId"], changed.headers["etag"]) == ("2", 'W/"2"')
    stale = await client.put(url, json=body, headers={**alice.headers, "If-Match": 'W/"1"'})
    outcome(stale, 412)
    old_copy = {**body, "meta": {"versionId": "1"}}
    outcome(
        await client.put(url, json=old_copy, headers=alice.headers), 409, "Patient.meta.versionId"
    )
    current = {**body, "meta": {"versionId": "2"}}
    assert (
        resource(await client.put(url, json=current, headers=alice.headers))["meta"]["versionId"]
        == "3"
    )
    outcome(
        await client.put(url, json=body, headers={**alice.headers, "If-Match": "3"}),
        400,
        "If-Match",
    )
    outcome(
        await client.put(
            url, json=fhir_patient(id="1" + str(patient["id"])), headers=alice.headers
        ),
        400,
        "Patient.id",
    )
    outcome(await client.put(url, json=fhir_patient(), headers=alice.headers), 400, "Patient.id")


async def test_a_delete_honours_if_match(client: Client, alice: Account) -> None:
    patient = await create_patient(client, alice)
    url = f"{FHIR}/Patient/{patient['id']}"
    outcome(await client.delete(url, headers={**alice.headers, "If-Match": 'W/"7"'}), 412)
    deleted = await client.delete(url, headers={**alice.headers, "If-Match": 'W/"1"'})
    assert deleted.status_code == 204
    outcome(await client.get(url, headers=alice.headers), 404)
    assert (
        await client.get(f"/api/patients/{patient['id']}/", headers=alice.headers)
    ).status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "expression"),
    [
        ({"resourceType": "Practitioner"}, 400, "resourceType"),
        ({"gender": "f"}, 400, "Patient.gender"),
        ({"colour": "blue"}, 400, "Patient.colour"),
        ({"name": [{"text": "A", "nickname": "B"}]}, 400, "Patient.name[0].nickname"),
        ({"name": "Grace"}, 400, "Patient.name"),
        ({"birthDate": "1990-13-01"}, 400, "Patient.birthDate"),
        ({"telecom": [{"system": "pigeon", "value": "x"}]}, 400, "Patient.telecom[0].system"),
        (
            {"extension": [{"url": AGE_URL, "valueInteger": 200}]},
            400,
            f"Patient.extension('{AGE_URL}').value",
        ),
        ({"extension": [{"url": AGE_URL, "valueString": "85"}]}, 400, "Patient.extension[0].value"),
        ({"name": [{"text": "x" * 300}]}, 400, "Patient.name[0].text"),
        (
            {"telecom": [{"system": "email", "value": "not-an-email"}]},
            400,
            "Patient.telecom[0].value",
        ),
        ({"name": [{"text": "A"}, {"text": "B"}]}, 422, "Patient.name"),
        ({"identifier": [{"value": "123"}]}, 422, "Patient.identifier"),
        ({"telecom": [{"system": "fax", "value": "1"}]}, 422, "Patient.telecom[0].system"),
        ({"gender": None}, 422, "Patient.gender"),
        ({"name": None}, 422, "Patient.name"),
        ({"extension": None}, 422, "Patient.birthDate"),
        (
            {"extension": [{"url": "http://example.org/x", "valueString": "y"}]},
            422,
            "Patient.extension[0]",
        ),
    ],
)
async def test_an_invalid_patient_is_refused_naming_the_element(
    client: Client, alice: Account, change: dict[str, Any], status: int, expression: str
) -> None:
    sent = {k: v for k, v in {**fhir_patient(), **change}.items() if v is not None}
    response = await client.post(f"{FHIR}/Patient", json=sent, headers=alice.headers)
    outcome(response, status, expression)
    listed = await client.get("/api/patients/", headers=alice.headers)
    assert listed.json() == []


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/fhir+json", 400),
        (b"[]", "application/json", 400),
        (b"", "application/fhir+json", 400),
        (b"<Patient/>", "application/fhir+xml", 415),
    ],
)
async def test_a_body_that_is_no_resource_is_refused(
    client: Client, alice: Account, content: bytes, content_type: str, status: int
) -> None:
    headers = {**alice.headers, "Content-Type": content_type}
    outcome(await client.post(f"{FHIR}/Patient", content=content, headers=headers), status)


# --- Practitioner and CareTeam ------------------------------------------------------------


async def test_a_doctor_reads_and_searches_as_a_practitioner(
    client: Client, alice: Account
) -> None:
    doctor = await create_doctor(
        client, alice, name="Dr. Miranda Bailey", specialization="Surgery", email="mb@example.org"
    )
    response = await client.get(f"{FHIR}/Practitioner/{doctor['id']}", headers=alice.headers)
    body = resource(response, kind="Practitioner")
    assert response.headers["etag"] == 'W/"1"'
    assert body["name"][0]["text"] == "Dr. Miranda Bailey"
    assert body["qualification"] == [{"code": {"text": "Surgery"}}]
    assert body["telecom"] == [{"system": "email", "value": "mb@example.org"}]
    found = resource(
        await client.get(f"{FHIR}/Practitioner?name=miranda bailey&_count=5", headers=alice.headers)
    )
    assert str(doctor["id"]) in ids(found)
    outcome(await client.get(f"{FHIR}/Practitioner/999999999", headers=alice.headers), 404)
    outcome(await client.get(f"{FHIR}/Practitioner?_count=x", headers=alice.headers), 400, "_count")


async def test_a_patients_care_team_is_its_doctors(
    client: Client, alice: Account, bob: Account
) -> None:
    patient = await create_patient(client, alice)
    doctors = [await create_doctor(client, alice, name=f"Dr. {n}") for n in ("A", "B")]
    for doctor in doctors:
        assigned = await client.post(
            "/api/mappings/",
            json={"patient": patient["id"], "doctor": doctor["id"]},
            headers=alice.headers,
        )
        assert assigned.status_code == 201
    team = resource(
        await client.get(f"{FHIR}/CareTeam/{patient['id']}", headers=alice.headers), kind="CareTeam"
    )
    assert team["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert sorted(p["member"]["reference"] for p in team["participant"]) == sorted(
        f"Practitioner/{d['id']}" for d in doctors
    )
    for query in (f"patient={patient['id']}", f"patient=Patient/{patient['id']}"):
        bundle = resource(await client.get(f"{FHIR}/CareTeam?{query}", headers=alice.headers))
        assert (bundle["total"], ids(bundle)) == (1, [str(patient["id"])])
    hidden = resource(
        await client.get(f"{FHIR}/CareTeam?patient={patient['id']}", headers=bob.headers)
    )
    assert (hidden["total"], ids(hidden)) == (0, [])
    outcome(await client.get(f"{FHIR}/CareTeam", headers=alice.headers), 400, "patient")


async def test_the_fhir_routes_are_described_by_the_capability_statement_alone(
    client: Client,
) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/api/fhir")]
    statement = resource(await client.get(f"{FHIR}/metadata"), kind="CapabilityStatement")
    served = {entry["type"] for entry in statement["rest"][0]["resource"]}
    assert served == {"Patient", "Practitioner", "CareTeam"}


async def test_only_the_current_version_is_kept(client: Client, alice: Account) -> None:
    patient = await create_patient(client, alice)
    url = f"{FHIR}/Patient/{patient['id']}"
    await client.put(url, json=fhir_patient(id=str(patient["id"])), headers=alice.headers)
    current = await client.get(f"{url}/_history/2", headers=alice.headers)
    assert resource(current, kind="Patient")["meta"]["versionId"] == "2"
    outcome(await client.get(f"{url}/_history/1", headers=alice.headers), 404)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
async def test_another_resource_type_is_an_operation_outcome(
    client: Client, alice: Account, method: str
) -> None:
    for path in ("Observation", "Observation/1"):
        response = await client.request(method, f"{FHIR}/{path}", headers=alice.headers)
        outcome(response, 404)
