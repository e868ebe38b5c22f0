"""The FHIR R4 routes under /api/fhir: Patient, Practitioner and CareTeam.

Each handler calls the same use case as its REST twin, with the same Bearer token (the
app's ``principal`` dependency), and only maps between FHIR resources and domain records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from litestar import Request, Response, Router, delete, get, post, put, route
from litestar.di import NamedDependency, Provide
from litestar.openapi import ResponseSpec
from litestar.params import Parameter

from healthcare.application.doctors import GetDoctor, ListDoctors
from healthcare.application.mappings import ListPatientDoctors
from healthcare.application.paging import MAX_LIMIT, Page, PageRequest
from healthcare.application.patients import (
    CreatePatient,
    DeletePatient,
    GetPatient,
    ListPatients,
    UpdatePatient,
)
from healthcare.application.ports import Clock
from healthcare.domain import listing
from healthcare.domain.entities import Doctor, Principal
from healthcare.domain.errors import InvalidInput, NotFound, PreconditionFailed
from healthcare.entrypoints.http.fhir.capabilities import capability_statement
from healthcare.entrypoints.http.fhir.outcomes import FHIR_EXCEPTION_HANDLERS, FhirProblem, IssueAt
from healthcare.entrypoints.http.fhir.reading import decode_resource, read_patient
from healthcare.entrypoints.http.fhir.resources import (
    BASE_PATH,
    FHIR_JSON,
    Bundle,
    CareTeamResource,
    OperationOutcome,
    PatientResource,
    PractitionerResource,
    care_team_resource,
    patient_resource,
    practitioner_resource,
)
from healthcare.entrypoints.http.fhir.search import (
    check_format,
    parse_search,
    searchset,
)
from healthcare.entrypoints.http.openapi import BEARER
from healthcare.entrypoints.http.preconditions import IF_MATCH, not_modified
from healthcare.entrypoints.http.schemas import MAX_ID

AnyRequest = Request[Any, Any, Any]
# Any FHIR id is accepted in a path: one that is not ours names nothing (404).
FhirId = Annotated[str, Parameter(description="The resource's id (ours are positive integers)")]
_BODY_TYPES = frozenset({"", FHIR_JSON, "application/json"})
_WEAK_TAG = "W/"
_MAX_BASES = 64
_bases: dict[tuple[str, bytes], str] = {}

PATIENT_SEARCH = {"name": "name", "name:contains": "name", "gender": "gender"}
PATIENT_SORTS = {
    "_id": "id",
    "name": "name",
    "_lastUpdated": "updated_at",
    "birthdate": "-age",  # the earlier the birth date, the greater the age
}
PRACTITIONER_SEARCH = {"name": "name", "name:contains": "name"}
PRACTITIONER_SORTS = {"_id": "id", "name": "name"}
CARE_TEAM_SEARCH = {"patient": "patient", "subject": "patient"}


_MEANINGS = {
    400: "Not a valid request or resource: each issue's expression is the FHIRPath of what "
    "is wrong",
    401: "Missing, invalid or expired credentials",
    404: "No such resource for this caller",
    406: "_format names something other than JSON",
    409: "meta.versionId in the body is not the current version",
    412: "If-Match named a version that is no longer current: nothing was changed",
    415: "The body is not application/fhir+json (or application/json)",
    422: "A valid FHIR resource that these records cannot hold (each issue names the element)",
    503: "The database cannot be reached: try again after the seconds in Retry-After",
}


def outcomes(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the OperationOutcome answers a FHIR route may give."""
    return {
        status: ResponseSpec(
            data_container=OperationOutcome, media_type=FHIR_JSON, description=_MEANINGS[status]
        )
        for status in (*statuses, 406, 503)
    }


_READ = outcomes(400, 401, 404)
_SEARCH = outcomes(400, 401)
_WRITE = outcomes(400, 401, 404, 409, 412, 415, 422)


def fhir_base(request: AnyRequest) -> str:
    """This server's FHIR base URL as the client reached it (scheme and Host)."""
    scope = request.scope
    host = next((v for k, v in scope["headers"] if k == b"host"), b"")
    key = (scope["scheme"], host)
    base = _bases.get(key)
    if base is None:
        base = str(request.base_url).rstrip("/") + BASE_PATH
        if len(_bases) >= _MAX_BASES:  # Host is the client's to say: keep a few only
            _bases.clear()
        _bases[key] = base
    return base


def _record_id(raw: str, resource: str) -> int:
    """Our ids are positive integers: any other FHIR id names nothing here (404)."""
    if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 16 and 0 < int(raw) <= MAX_ID:
        return int(raw)
    raise NotFound(resource, raw)


def _versioned(body: Any, version: int, status: int = 200, **headers: str) -> Response[Any]:
    return Response(
        body,
        status_code=status,
        media_type=FHIR_JSON,
        headers={"ETag": f'{_WEAK_TAG}"{version}"', **headers},
    )


def _if_match(request: AnyRequest) -> int | None:
    """The version If-Match names: W/"3" as FHIR sends it (or "3"); * or none, any."""
    raw = next((v.decode("latin-1") for k, v in request.scope["headers"] if k == IF_MATCH), None)
    if raw is None or raw.strip() == "*":
        return None
    tag = raw.strip().removeprefix(_WEAK_TAG)
    digits = tag[1:-1] if len(tag) > 2 and tag[0] == tag[-1] == '"' else ""
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 18):
        raise FhirProblem.one(
            400, "invalid", 'If-Match: must be a version\'s ETag, such as W/"3"', "If-Match"
        )
    return int(digits)


async def _body(request: AnyRequest) -> dict[str, Any]:
    content_type = next(
        (v.decode("latin-1") for k, v in request.scope["headers"] if k == b"content-type"), ""
    )
    if content_type.split(";")[0].strip().lower() not in _BODY_TYPES:
        raise FhirProblem.one(
            415, "not-supported", "Send application/fhir+json (or application/json)"
        )
    return decode_resource(await request.body())


@get(
    "/metadata",
    summary="The CapabilityStatement: what this FHIR server does",
    security=[],
    media_type=FHIR_JSON,
    responses=outcomes(),
)
async def metadata(request: AnyRequest) -> Response[dict[str, Any]]:
    check_format(request)
    return Response(capability_statement(fhir_base(request)), media_type=FHIR_JSON)


@get(
    "/Patient/{patient_id:str}",
    summary="Read a Patient (one of the caller's patients)",
    media_type=FHIR_JSON,
    responses=_READ,
)
async def read_patient_resource(
    request: AnyRequest,
    patient_id: FhirId,
    principal: NamedDependency[Principal],
    get_patient: NamedDependency[GetPatient],
) -> Response[PatientResource]:
    check_format(request)
    patient = await get_patient(principal, _record_id(patient_id, "Patient"))
    if not_modified(request, patient.version):
        return _versioned(None, patient.version, status=304)
    return _versioned(patient_resource(patient, fhir_base(request)), patient.version)


@get(
    "/Patient/{patient_id:str}/_history/{version_id:str}",
    summary="Read a version of a Patient: the current one (no other is kept)",
    media_type=FHIR_JSON,
    responses=_READ,
)
async def read_patient_version(
    request: AnyRequest,
    patient_id: FhirId,
    version_id: FhirId,
    principal: NamedDependency[Principal],
    get_patient: NamedDependency[GetPatient],
) -> Response[PatientResource]:
    check_format(request)
    patient = await get_patient(principal, _record_id(patient_id, "Patient"))
    if version_id != str(patient.version):
        raise FhirProblem.one(
            404,
            "not-found",
            f"Patient {patient_id} is at version {patient.version}; no other version is kept",
        )
    return _versioned(patient_resource(patient, fhir_base(request)), patient.version)


@get(
    "/Patient",
    summary="Search the caller's Patients: name, gender, paging and order",
    media_type=FHIR_JSON,
    responses=_SEARCH,
)
async def search_patients(
    request: AnyRequest,
    principal: NamedDependency[Principal],
    list_patients: NamedDependency[ListPatients],
    fhir_page_size: NamedDependency[int],
) -> Response[Bundle]:
    check_format(request)
    search = parse_search(request, PATIENT_SEARCH, PATIENT_SORTS, fhir_page_size)
    values = search.values
    gender = values.get("gender")
    if gender is not None:
        gender = gender.removeprefix("http://hl7.org/fhir/administrative-gender|")
        if gender not in {"male", "female", "other", "unknown"}:
            raise FhirProblem.one(
                400, "invalid", "gender: must be male, female, other or unknown", "gender"
            )
    where = _filter(
        lambda: listing.patient_filter(
            search=values.get("name"), gender=gender, ordering=search.ordering
        )
    )
    page = await list_patients(principal, _asked(search.page, search.count_only), where)
    base = fhir_base(request)
    query = [(k, v) for k, v in request.query_params.items() if k in PATIENT_SEARCH]
    return Response(
        searchset(base, "Patient", search, page, lambda p: patient_resource(p, base), query=query),
        media_type=FHIR_JSON,
    )


@post(
    "/Patient",
    summary="Create a Patient, owned by the caller",
    media_type=FHIR_JSON,
    responses=_WRITE,
)
async def create_patient_resource(
    request: AnyRequest,
    principal: NamedDependency[Principal],
    create_patient: NamedDependency[CreatePatient],
    fhir_today: NamedDependency[date],
) -> Response[PatientResource]:
    check_format(request)
    base = fhir_base(request)
    sent = read_patient(await _body(request), fhir_today, base)
    patient = await create_patient(principal, sent.data)
    location = f"{base}/Patient/{patient.id}/_history/{patient.version}"
    return _versioned(
        patient_resource(patient, base), patient.version, status=201, Location=location
    )


@put(
    "/Patient/{patient_id:str}",
    summary="Update one of the caller's Patients",
    media_type=FHIR_JSON,
    responses=_WRITE,
)
async def update_patient_resource(
    request: AnyRequest,
    patient_id: FhirId,
    principal: NamedDependency[Principal],
    update_patient: NamedDependency[UpdatePatient],
    fhir_today: NamedDependency[date],
) -> Response[PatientResource]:
    check_format(request)
    base = fhir_base(request)
    sent = read_patient(await _body(request), fhir_today, base)
    if sent.id != patient_id:
        raise FhirProblem.one(400, "invalid", "Patient.id: must be the id in the URL", "Patient.id")
    record_id = _record_id(patient_id, "Patient")
    expected = _if_match(request)
    from_body = None
    if expected is None and sent.version_id is not None:
        # A body that says which version it was read at is checked against it: a
        # conflict (409) rather than a failed precondition, which only If-Match gives.
        from_body = sent.version_id
        expected = int(sent.version_id) if sent.version_id.isdigit() else 0
    try:
        patient = await update_patient(principal, record_id, sent.data, expected_version=expected)
    except PreconditionFailed as changed:
        if from_body is None:
            raise
        raise FhirProblem.one(
            409, "conflict", f"Patient.meta.versionId: {changed.message}", "Patient.meta.versionId"
        ) from None
    return _versioned(patient_resource(patient, base), patient.version)


@delete(
    "/Patient/{patient_id:str}",
    summary="Delete one of the caller's Patients",
    media_type=FHIR_JSON,
    responses=_WRITE,
)
async def delete_patient_resource(
    request: AnyRequest,
    patient_id: FhirId,
    principal: NamedDependency[Principal],
    delete_patient: NamedDependency[DeletePatient],
) -> None:
    check_format(request)
    await delete_patient(
        principal, _record_id(patient_id, "Patient"), expected_version=_if_match(request)
    )


@get(
    "/Practitioner/{doctor_id:str}",
    summary="Read a Practitioner (a doctor)",
    media_type=FHIR_JSON,
    responses=_READ,
)
async def read_practitioner(
    request: AnyRequest,
    doctor_id: FhirId,
    principal: NamedDependency[Principal],
    get_doctor: NamedDependency[GetDoctor],
) -> Response[PractitionerResource]:
    check_format(request)
    doctor = await get_doctor(principal, _record_id(doctor_id, "Practitioner"))
    return _versioned(practitioner_resource(doctor), doctor.version)


@get(
    "/Practitioner",
    summary="Search the Practitioners (the doctors): name, paging and order",
    media_type=FHIR_JSON,
    responses=_SEARCH,
)
async def search_practitioners(
    request: AnyRequest,
    principal: NamedDependency[Principal],
    list_doctors: NamedDependency[ListDoctors],
    fhir_page_size: NamedDependency[int],
) -> Response[Bundle]:
    check_format(request)
    search = parse_search(request, PRACTITIONER_SEARCH, PRACTITIONER_SORTS, fhir_page_size)
    where = _filter(
        lambda: listing.doctor_filter(search=search.values.get("name"), ordering=search.ordering)
    )
    page = await list_doctors(principal, _asked(search.page, search.count_only), where)
    query = [(k, v) for k, v in request.query_params.items() if k in PRACTITIONER_SEARCH]
    bundle = searchset(
        fhir_base(request), "Practitioner", search, page, practitioner_resource, query=query
    )
    return Response(bundle, media_type=FHIR_JSON)


async def _care_team_doctors(
    principal: Principal, patient_id: int, list_patient_doctors: ListPatientDoctors
) -> list[Doctor]:
    """Every doctor of the patient, page after page (NotFound if not the caller's)."""
    doctors: list[Doctor] = []
    while True:
        page = await list_patient_doctors(
            principal, patient_id, PageRequest(limit=MAX_LIMIT, offset=len(doctors))
        )
        doctors += page.items
        if not page.items or len(doctors) >= page.total:
            return doctors


@get(
    "/CareTeam/{patient_id:str}",
    summary="A patient's CareTeam (its id is the patient's)",
    media_type=FHIR_JSON,
    responses=_READ,
)
async def read_care_team(
    request: AnyRequest,
    patient_id: FhirId,
    principal: NamedDependency[Principal],
    list_patient_doctors: NamedDependency[ListPatientDoctors],
) -> Response[CareTeamResource]:
    check_format(request)
    record_id = _record_id(patient_id, "CareTeam")
    doctors = await _care_team_doctors(principal, record_id, list_patient_doctors)
    return Response(care_team_resource(record_id, doctors), media_type=FHIR_JSON)


@get(
    "/CareTeam",
    summary="Search CareTeams by patient: the one of that patient",
    media_type=FHIR_JSON,
    responses=_SEARCH,
)
async def search_care_teams(
    request: AnyRequest,
    principal: NamedDependency[Principal],
    list_patient_doctors: NamedDependency[ListPatientDoctors],
) -> Response[Bundle]:
    check_format(request)
    search = parse_search(request, CARE_TEAM_SEARCH, {}, 1)
    raw = search.values.get("patient")
    if raw is None:
        raise FhirProblem.one(
            400, "required", "patient: search CareTeams by patient (patient=<id>)", "patient"
        )
    patient_id = raw.removeprefix("Patient/")
    teams: list[CareTeamResource] = []
    try:
        record_id = _record_id(patient_id, "Patient")
        doctors = await _care_team_doctors(principal, record_id, list_patient_doctors)
        teams.append(care_team_resource(record_id, doctors))
    except NotFound:
        pass  # a search finds nothing where a read is 404: another user's patient included
    page = Page(teams[search.page.offset : search.page.offset + search.page.limit], len(teams))
    query = [("patient", raw)]
    bundle = searchset(fhir_base(request), "CareTeam", search, page, lambda t: t, query=query)
    return Response(bundle, media_type=FHIR_JSON)


@route(
    ["/{resource_type:str}", "/{resource_type:str}/{resource_id:str}"],
    http_method=["GET", "POST", "PUT", "DELETE"],
    include_in_schema=False,
)
async def not_served(resource_type: FhirId) -> None:
    """Any other resource type: an OperationOutcome rather than the REST routes' 404."""
    raise FhirProblem.one(
        404, "not-supported", f"{resource_type} is not served here: see {BASE_PATH}/metadata"
    )


def _filter(build: Callable[[], Any]) -> Any:
    """The core's listing rules, their refusals named by the search parameter."""
    try:
        return build()
    except InvalidInput as invalid:
        names = {"search": "name", "ordering": "_sort"}
        issues = []
        for error in invalid.errors:
            name = names.get(error.field, error.field)
            issues.append(IssueAt(f"{name}: {error.message}", name))
        raise FhirProblem.invalid(issues) from None


def _asked(page: PageRequest, count_only: bool) -> PageRequest:
    # The total alone: the smallest page, whose one row is not sent.
    return PageRequest(limit=1, offset=0) if count_only else page


HANDLERS = [
    metadata,
    read_patient_resource,
    read_patient_version,
    search_patients,
    create_patient_resource,
    update_patient_resource,
    delete_patient_resource,
    read_practitioner,
    search_practitioners,
    read_care_team,
    search_care_teams,
    not_served,
]


def fhir_router(clock: Clock, page_size: int) -> Router:
    """The FHIR face, its errors as OperationOutcome resources."""

    def today() -> date:
        return clock.now().date()

    def default_page_size() -> int:
        return page_size

    return Router(
        BASE_PATH,
        route_handlers=HANDLERS,
        dependencies={
            "fhir_today": Provide(today, sync_to_thread=False),
            "fhir_page_size": Provide(default_page_size, sync_to_thread=False),
        },
        exception_handlers=dict(FHIR_EXCEPTION_HANDLERS),
        tags=["fhir"],
        security=BEARER,
        # FHIR clients read the CapabilityStatement and FHIR's own definitions, not OpenAPI;
        # an OpenAPI schema of a Patient resource would be either the whole of FHIR's
        # StructureDefinition or an approximation that schemathesis rightly proves wrong.
        include_in_schema=False,
    )
