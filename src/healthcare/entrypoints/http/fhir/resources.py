"""FHIR R4 resources as msgspec structs, and the mapping of domain records onto them.

Structs, not a FHIR library's models: a read encodes one struct, as the REST routes do, and
stays as fast. Field names are FHIR's (camelCase on the wire); fields left None are left out.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from healthcare.domain.entities import Doctor, Gender, Patient

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
BASE_PATH = "/api/fhir"
# Extensions for what a patient record holds and FHIR has no element for. Their canonical
# URLs are under our base: {base}/StructureDefinition/{name}.
AGE_EXTENSION = "patient-age"
NOTES_EXTENSION = "patient-notes"

FHIR_GENDER = {
    Gender.MALE: "male",
    Gender.FEMALE: "female",
    Gender.OTHER: "other",
    Gender.UNKNOWN: "unknown",
}
GENDER_OF_CODE = {code: gender for gender, code in FHIR_GENDER.items()}


class _Element(msgspec.Struct, omit_defaults=True, rename="camel"):
    pass


class Meta(_Element):
    version_id: str | None = None
    last_updated: datetime | None = None


class Extension(_Element):
    url: str
    value_integer: int | None = None
    value_string: str | None = None


class HumanName(_Element):
    text: str
    family: str | None = None
    given: list[str] | None = None


class ContactPoint(_Element):
    system: str
    value: str


class Address(_Element):
    text: str


class CodeableConcept(_Element):
    text: str


class Qualification(_Element):
    code: CodeableConcept


class Reference(_Element):
    reference: str
    display: str | None = None


class PatientResource(_Element, tag_field="resourceType", tag="Patient"):
    id: str
    meta: Meta
    extension: list[Extension] | None = None
    name: list[HumanName] | None = None
    telecom: list[ContactPoint] | None = None
    gender: str | None = None
    address: list[Address] | None = None


class PractitionerResource(_Element, tag_field="resourceType", tag="Practitioner"):
    id: str
    meta: Meta
    name: list[HumanName] | None = None
    telecom: list[ContactPoint] | None = None
    qualification: list[Qualification] | None = None


class CareTeamParticipant(_Element):
    member: Reference
    role: list[CodeableConcept] | None = None


class CareTeamResource(_Element, tag_field="resourceType", tag="CareTeam"):
    id: str
    status: str
    subject: Reference
    participant: list[CareTeamParticipant] | None = None


class Issue(_Element):
    severity: str
    code: str
    diagnostics: str | None = None
    expression: list[str] | None = None


class OperationOutcome(_Element, tag_field="resourceType", tag="OperationOutcome"):
    issue: list[Issue]


class BundleLink(_Element):
    relation: str
    url: str


class BundleSearch(_Element):
    mode: str


class BundleEntry(_Element):
    resource: Any
    full_url: str | None = None
    search: BundleSearch | None = None


class Bundle(_Element, tag_field="resourceType", tag="Bundle"):
    type: str
    total: int | None = None
    link: list[BundleLink] | None = None
    entry: list[BundleEntry] | None = None


def extension_url(base: str, name: str) -> str:
    return f"{base}/StructureDefinition/{name}"


def human_name(text: str) -> HumanName:
    """``text`` with FHIR's parts: the last word is the family name, the words before it the
    given names (a one-word name is a family name alone). Only ``text`` is read back."""
    words = text.split()
    if not words:
        return HumanName(text)
    return HumanName(text, words[-1], words[:-1] or None)


def _telecom(phone: str | None, email: str | None) -> list[ContactPoint] | None:
    points = []
    if phone is not None:
        points.append(ContactPoint("phone", phone))
    if email is not None:
        points.append(ContactPoint("email", email))
    return points or None


def patient_resource(patient: Patient, base: str) -> PatientResource:
    extension = [Extension(extension_url(base, AGE_EXTENSION), value_integer=patient.age)]
    if patient.notes is not None:
        extension.append(
            Extension(extension_url(base, NOTES_EXTENSION), value_string=patient.notes)
        )
    return PatientResource(
        id=str(patient.id),
        meta=Meta(str(patient.version), patient.updated_at),
        extension=extension,
        name=[human_name(patient.name)],
        telecom=_telecom(patient.phone, patient.email),
        gender=FHIR_GENDER[patient.gender],
        address=[Address(patient.address)] if patient.address is not None else None,
    )


def practitioner_resource(doctor: Doctor) -> PractitionerResource:
    return PractitionerResource(
        id=str(doctor.id),
        meta=Meta(str(doctor.version), doctor.updated_at),
        name=[human_name(doctor.name)],
        telecom=_telecom(doctor.phone, doctor.email),
        qualification=[Qualification(CodeableConcept(doctor.specialization))],
    )


def care_team_resource(patient_id: int, doctors: list[Doctor]) -> CareTeamResource:
    """A patient's care team: the doctors assigned to it. Its id is the patient's."""
    return CareTeamResource(
        id=str(patient_id),
        status="active",
        subject=Reference(f"Patient/{patient_id}"),
        participant=[
            CareTeamParticipant(
                Reference(f"Practitioner/{doctor.id}", doctor.name),
                [CodeableConcept(doctor.specialization)],
            )
            for doctor in doctors
        ]
        or None,
    )
