"""Reading a FHIR Patient into the domain's patient data: no server, no database."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from healthcare.domain.entities import Gender
from healthcare.entrypoints.http.fhir.outcomes import FhirProblem
from healthcare.entrypoints.http.fhir.reading import decode_resource, read_patient
from healthcare.entrypoints.http.fhir.resources import human_name

BASE = "https://ehr.example.org/api/fhir"
AGE = f"{BASE}/StructureDefinition/patient-age"
TODAY = date(2026, 12, 3)


def patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "gender": "other", "name": [{"text": "Sam"}], **elements}


def test_the_parts_of_a_name_and_an_address_are_joined_when_there_is_no_text() -> None:
    sent = patient(
        name=[{"prefix": ["Rear Admiral"], "given": ["Grace"], "family": "Hopper"}],
        address=[{"line": ["1 Navy Way", "Suite 2"], "city": "Arlington", "postalCode": "22202"}],
        birthDate="1906-12-09",
    )
    data = read_patient(sent, TODAY, BASE).data
    assert data.name == "Rear Admiral Grace Hopper"
    assert data.address == "1 Navy Way, Suite 2, Arlington, 22202"
    assert (data.age, data.gender) == (119, Gender.OTHER)


@pytest.mark.parametrize(
    ("born", "age"),
    [("2000-12-03", 26), ("2000-12-04", 25), ("2000-12", 26), ("2000", 26), ("2026-12-03", 0)],
)
def test_a_birth_date_is_the_age_in_whole_years(born: str, age: int) -> None:
    assert read_patient(patient(birthDate=born), TODAY, BASE).data.age == age


def test_the_age_extension_is_ours_only_under_our_base() -> None:
    ours = patient(extension=[{"url": AGE, "valueInteger": 40}])
    assert read_patient(ours, TODAY, BASE).data.age == 40
    elsewhere = patient(extension=[{"url": AGE.replace("ehr", "other"), "valueInteger": 40}])
    with pytest.raises(FhirProblem) as refused:
        read_patient(elsewhere, TODAY, BASE)
    assert refused.value.status == 422


def test_every_bad_element_is_named_at_once() -> None:
    sent = patient(gender="yes", birthDate="tomorrow", colour="blue", name=[{"text": 3}])
    with pytest.raises(FhirProblem) as refused:
        read_patient(sent, TODAY, BASE)
    assert refused.value.status == 400
    assert [issue.expression for issue in refused.value.issues] == [
        "Patient.colour",
        "Patient.name[0].text",
        "Patient.gender",
        "Patient.birthDate",
    ]


@pytest.mark.parametrize("body", [b"", b"  ", b"{", b"[1]", b'"Patient"', b"\xff"])
def test_a_body_that_is_no_json_object_is_400(body: bytes) -> None:
    with pytest.raises(FhirProblem) as refused:
        decode_resource(body)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("text", "family", "given"),
    [
        ("Ada King Lovelace", "Lovelace", ["Ada", "King"]),
        ("Cher", "Cher", None),
        ("  ", None, None),
    ],
)
def test_a_name_is_split_at_its_last_word(
    text: str, family: str | None, given: list[str] | None
) -> None:
    name = human_name(text)
    assert (name.text, name.family, name.given) == (text, family, given)
