"""A Patient resource a client sends, read into the domain's PatientData.

Three kinds of refusal, every one naming the element by its FHIRPath:
- 400: not a valid FHIR Patient (an element FHIR does not have, a wrong type, a code outside
  its value set, a malformed date) or a value the core's rules refuse (a name too long...);
- 422: a valid Patient our records cannot hold (two names, a fax number, an identifier, no
  gender or age...), refused rather than stored in part.
Server-managed elements (``id``, ``meta``, ``text``, ``language``) are read only for the
checks of an update (``id``, ``meta.versionId``) and otherwise ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import msgspec

from healthcare.domain import rules
from healthcare.domain.entities import PatientData
from healthcare.domain.errors import InvalidInput
from healthcare.entrypoints.http.fhir.outcomes import FhirProblem, IssueAt
from healthcare.entrypoints.http.fhir.resources import (
    AGE_EXTENSION,
    GENDER_OF_CODE,
    NOTES_EXTENSION,
)

# Every element of an R4 Patient; of them we keep these, ignore the server-managed ones, and
# refuse the rest with 422.
_KEPT = frozenset({"extension", "name", "telecom", "gender", "birthDate", "address"})
_IGNORED = frozenset({"resourceType", "id", "meta", "text", "language"})
_NOT_HELD = frozenset(
    {
        "implicitRules",
        "contained",
        "modifierExtension",
        "identifier",
        "active",
        "deceasedBoolean",
        "deceasedDateTime",
        "maritalStatus",
        "multipleBirthBoolean",
        "multipleBirthInteger",
        "photo",
        "contact",
        "communication",
        "generalPractitioner",
        "managingOrganization",
        "link",
    }
)
_HUMAN_NAME = frozenset(
    {"id", "extension", "use", "text", "family", "given", "prefix", "suffix", "period"}
)
_CONTACT_POINT = frozenset({"id", "extension", "system", "value", "use", "rank", "period"})
_ADDRESS = frozenset(
    {
        "id",
        "extension",
        "use",
        "type",
        "text",
        "line",
        "city",
        "district",
        "state",
        "postalCode",
        "country",
        "period",
    }
)
_ADDRESS_PARTS = ("city", "district", "state", "postalCode", "country")
_CONTACT_SYSTEMS = frozenset({"phone", "fax", "email", "pager", "url", "sms", "other"})
_DATE = re.compile(r"([0-9]{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?")


@dataclass
class _Reading:
    """What is wrong so far, and where each of the record's fields came from."""

    invalid: list[IssueAt] = field(default_factory=list)
    not_held: list[IssueAt] = field(default_factory=list)
    where: dict[str, str] = field(default_factory=dict)

    def bad(self, path: str, message: str) -> None:
        self.invalid.append(IssueAt(f"{path}: {message}", path))

    def cannot_hold(self, path: str, message: str) -> None:
        self.not_held.append(IssueAt(f"{path}: {message}", path))


@dataclass(frozen=True, slots=True)
class PatientIn:
    """A Patient read from a request: its record, and what an update checks."""

    data: PatientData
    id: str | None
    version_id: str | None


def decode_resource(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 OperationOutcome."""
    if not body.strip():
        raise FhirProblem.one(400, "required", "The request has no body: send a Patient resource")
    try:
        decoded = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        raise FhirProblem.one(400, "structure", "The body is not valid JSON") from None
    if not isinstance(decoded, dict):
        raise FhirProblem.one(400, "structure", "The body must be a JSON object (a resource)")
    return decoded


def read_patient(resource: dict[str, Any], today: date, base: str) -> PatientIn:
    """``resource`` as patient data; FhirProblem (400 or 422) naming every bad element."""
    reading = _Reading()
    kind = resource.get("resourceType")
    if kind != "Patient":
        reading.bad("resourceType", f"must be Patient, not {kind!r}")
        raise FhirProblem.invalid(reading.invalid)
    for key in resource:
        name = key.removeprefix("_")
        if name in _NOT_HELD or (key.startswith("_") and name in _KEPT | _IGNORED):
            reading.cannot_hold(f"Patient.{name}", "is not kept by this server")
        elif name not in _KEPT and name not in _IGNORED:
            reading.bad(f"Patient.{key}", "is not an element of Patient")
    resource_id = _string(reading, resource, "id", "Patient.id")
    version_id = None
    meta = resource.get("meta")
    if meta is not None:
        if isinstance(meta, dict):
            version_id = _string(reading, meta, "versionId", "Patient.meta.versionId")
        else:
            reading.bad("Patient.meta", "must be an object")
    values: dict[str, Any] = {
        "name": _name(reading, resource.get("name")),
        "gender": _gender(reading, resource.get("gender")),
        **_telecom(reading, resource.get("telecom")),
        "address": _address(reading, resource.get("address")),
    }
    extensions = _extensions(reading, resource.get("extension"), base)
    values["notes"] = extensions.get(NOTES_EXTENSION)
    values["age"] = _age(reading, extensions.get(AGE_EXTENSION), resource, today, base)
    if reading.invalid:
        raise FhirProblem.invalid(reading.invalid)
    if reading.not_held:
        raise FhirProblem(422, "not-supported", reading.not_held)
    try:
        data = rules.parse_patient(**values)
    except InvalidInput as invalid:
        issues = [
            IssueAt(f"{e.field}: {e.message}", reading.where.get(e.field, "Patient"))
            for e in invalid.errors
        ]
        raise FhirProblem.invalid(issues) from None
    return PatientIn(data, resource_id, version_id)


def _string(reading: _Reading, owner: dict[str, Any], key: str, path: str) -> str | None:
    value = owner.get(key)
    if value is not None and not isinstance(value, str):
        reading.bad(path, "must be a string")
        return None
    return value


def _strings(reading: _Reading, owner: dict[str, Any], key: str, path: str) -> list[str]:
    value = owner.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        reading.bad(path, "must be an array of strings")
        return []
    return value


def _objects(reading: _Reading, value: Any, path: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        reading.bad(path, "must be an array of objects")
        return []
    return value


def _check_keys(
    reading: _Reading, item: dict[str, Any], allowed: frozenset[str], path: str, kind: str
) -> None:
    for key in item:
        if key.removeprefix("_") not in allowed:
            reading.bad(f"{path}.{key}", f"is not an element of {kind}")
        elif key == "extension" or key.startswith("_"):
            reading.cannot_hold(f"{path}.{key}", "is not kept by this server")


def _optional(text: str | None) -> str | None:
    """A blank optional value is no value, as on the REST routes."""
    return text if text is not None and text.strip() else None


def _name(reading: _Reading, value: Any) -> str | None:
    names = _objects(reading, value, "Patient.name")
    if not names:
        if value is None or value == []:
            reading.cannot_hold("Patient.name", "a patient needs a name")
        return None
    if len(names) > 1:
        reading.cannot_hold("Patient.name", "this server keeps one name per patient")
    path = "Patient.name[0]"
    name = names[0]
    _check_keys(reading, name, _HUMAN_NAME, path, "HumanName")
    text = _string(reading, name, "text", f"{path}.text")
    family = _string(reading, name, "family", f"{path}.family")
    parts = [
        *_strings(reading, name, "prefix", f"{path}.prefix"),
        *_strings(reading, name, "given", f"{path}.given"),
        *([family] if family else []),
        *_strings(reading, name, "suffix", f"{path}.suffix"),
    ]
    _string(reading, name, "use", f"{path}.use")
    if text is not None:
        reading.where["name"] = f"{path}.text"
        return text
    reading.where["name"] = path
    if not parts:
        reading.cannot_hold(path, "a patient's name needs text, or given or family names")
        return None
    return " ".join(parts)


def _gender(reading: _Reading, value: Any) -> str:
    reading.where["gender"] = "Patient.gender"
    if value is None:
        reading.cannot_hold("Patient.gender", "a patient needs a gender (unknown is one)")
    elif value not in GENDER_OF_CODE:
        reading.bad("Patient.gender", "must be one of male, female, other, unknown")
    else:
        return GENDER_OF_CODE[value].value
    return "Unknown"  # stands in, so that the other elements are checked too


def _telecom(reading: _Reading, value: Any) -> dict[str, str | None]:
    found: dict[str, str | None] = {"phone": None, "email": None}
    for index, point in enumerate(_objects(reading, value, "Patient.telecom")):
        path = f"Patient.telecom[{index}]"
        _check_keys(reading, point, _CONTACT_POINT, path, "ContactPoint")
        system = _string(reading, point, "system", f"{path}.system")
        text = _string(reading, point, "value", f"{path}.value")
        if system is not None and system not in _CONTACT_SYSTEMS:
            reading.bad(f"{path}.system", "must be a ContactPoint system code")
        elif system not in found:
            reading.cannot_hold(f"{path}.system", "this server keeps a phone and an email only")
        elif system in reading.where:
            reading.cannot_hold(path, f"this server keeps one {system} per patient")
        elif text is None:
            reading.cannot_hold(f"{path}.value", "a contact point needs a value")
        else:
            reading.where[system] = f"{path}.value"
            found[system] = _optional(text)
    return found


def _address(reading: _Reading, value: Any) -> str | None:
    addresses = _objects(reading, value, "Patient.address")
    if not addresses:
        return None
    if len(addresses) > 1:
        reading.cannot_hold("Patient.address", "this server keeps one address per patient")
    path = "Patient.address[0]"
    address = addresses[0]
    _check_keys(reading, address, _ADDRESS, path, "Address")
    text = _string(reading, address, "text", f"{path}.text")
    lines = _strings(reading, address, "line", f"{path}.line")
    parts = [_string(reading, address, key, f"{path}.{key}") for key in _ADDRESS_PARTS]
    _string(reading, address, "use", f"{path}.use")
    _string(reading, address, "type", f"{path}.type")
    if text is not None:
        reading.where["address"] = f"{path}.text"
        return _optional(text)
    reading.where["address"] = path
    return _optional(", ".join([*lines, *(part for part in parts if part)]))


def _extensions(reading: _Reading, value: Any, base: str) -> dict[str, Any]:
    """Our extensions' values, by name; any other extension is one we cannot hold."""
    found: dict[str, Any] = {}
    ours = {f"{base}/StructureDefinition/{name}": name for name in (AGE_EXTENSION, NOTES_EXTENSION)}
    for index, extension in enumerate(_objects(reading, value, "Patient.extension")):
        path = f"Patient.extension[{index}]"
        url = extension.get("url")
        if not isinstance(url, str) or not url:
            reading.bad(f"{path}.url", "an extension needs its url")
            continue
        name = ours.get(url)
        values = {key: item for key, item in extension.items() if key.startswith("value")}
        if name is None:
            reading.cannot_hold(path, f"{url} is not an extension this server keeps")
        elif name in found:
            reading.cannot_hold(path, f"{url} may be given once")
        elif name == AGE_EXTENSION:
            age = values.get("valueInteger")
            if set(values) != {"valueInteger"} or isinstance(age, bool) or not isinstance(age, int):
                reading.bad(f"{path}.value", "must be a valueInteger")
            else:
                found[name] = age
                reading.where["age"] = f"Patient.extension('{url}').value"
        else:
            notes = values.get("valueString")
            if set(values) != {"valueString"} or not isinstance(notes, str):
                reading.bad(f"{path}.value", "must be a valueString")
            else:
                found[name] = _optional(notes)
                reading.where["notes"] = f"Patient.extension('{url}').value"
    return found


def _age(
    reading: _Reading, age: int | None, resource: dict[str, Any], today: date, base: str
) -> int:
    born = _birth_date(reading, resource.get("birthDate"))
    if born is not None:
        years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        if born > today:
            reading.bad("Patient.birthDate", "must not be in the future")
        elif age is not None and age != years:
            reading.bad("Patient.birthDate", f"gives an age of {years}, the extension {age}")
        else:
            reading.where.setdefault("age", "Patient.birthDate")
            return years
    if age is None and born is None and "birthDate" not in resource:
        url = f"{base}/StructureDefinition/{AGE_EXTENSION}"
        reading.cannot_hold("Patient.birthDate", f"a patient needs a birthDate or {url}")
    return age if age is not None else 0


def _birth_date(reading: _Reading, value: Any) -> date | None:
    if value is None:
        return None
    found = _DATE.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        reading.bad("Patient.birthDate", "must be a date: YYYY, YYYY-MM or YYYY-MM-DD")
        return None
    year, month, day = found.group(1), found.group(3), found.group(5)
    try:
        # A partial date is read as its first day: an age in whole years, within one year.
        return date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        reading.bad("Patient.birthDate", "is not a date of the calendar")
        return None
