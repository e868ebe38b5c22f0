"""Patient records: private to the user who created them."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import Parameter

from healthcare.application.mappings import ListPatientDoctors
from healthcare.application.paging import PageRequest
from healthcare.application.patients import (
    CreatePatient,
    DeletePatient,
    GetPatient,
    ListPatients,
    PatchPatient,
    UpdatePatient,
)
from healthcare.domain.entities import Principal
from healthcare.domain.listing import PatientFilter
from healthcare.entrypoints.http.bodies import BodyOf
from healthcare.entrypoints.http.filters import PATIENT_FILTER
from healthcare.entrypoints.http.openapi import BEARER, problems
from healthcare.entrypoints.http.paging import PAGING_HEADERS, paged_response
from healthcare.entrypoints.http.preconditions import (
    ETAG_HEADERS,
    NOT_MODIFIED,
    expected_version,
    not_modified,
    versioned,
)
from healthcare.entrypoints.http.schemas import (
    MAX_ID,
    NO_PATIENT_CHANGES,
    DoctorOut,
    PatientIn,
    PatientOut,
    PatientPatchIn,
)

PatientId = Annotated[int, Parameter(gt=0, le=MAX_ID, description="The patient's id")]


class PatientController(Controller):
    path = "/api/patients"
    tags = ["patients"]
    security = BEARER

    @post(
        "/",
        summary="Add a patient, owned by the caller",
        response_headers=ETAG_HEADERS,
        responses=problems(400, 401, 415),
    )
    async def create(
        self,
        data: BodyOf[PatientIn],
        principal: NamedDependency[Principal],
        create_patient: NamedDependency[CreatePatient],
    ) -> Response[PatientOut]:
        patient = await create_patient(principal, data.to_domain())
        return versioned(PatientOut.of(patient), patient.version, status_code=201)

    @get(
        "/",
        summary="The caller's patients: searched, filtered and ordered as asked",
        response_headers=PAGING_HEADERS,
        responses=problems(400, 401),
        dependencies=PATIENT_FILTER,
    )
    async def index(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        page_request: NamedDependency[PageRequest],
        patient_filter: NamedDependency[PatientFilter],
        list_patients: NamedDependency[ListPatients],
    ) -> Response[list[PatientOut]]:
        page = await list_patients(principal, page_request, patient_filter)
        return paged_response(request, page, page_request, PatientOut.of)

    @get(
        "/{patient_id:int}",
        summary="One of the caller's patients",
        response_headers=ETAG_HEADERS,
        responses={**problems(400, 401, 404), **NOT_MODIFIED},
    )
    async def show(
        self,
        request: Request[Any, Any, Any],
        patient_id: PatientId,
        principal: NamedDependency[Principal],
        get_patient: NamedDependency[GetPatient],
    ) -> Response[PatientOut]:
        patient = await get_patient(principal, patient_id)
        if not_modified(request, patient.version):
            return versioned(None, patient.version, status_code=304)
        return versioned(PatientOut.of(patient), patient.version)

    @put(
        "/{patient_id:int}",
        summary="Replace one of the caller's patients",
        response_headers=ETAG_HEADERS,
        responses=problems(400, 401, 404, 412, 415),
    )
    async def replace(
        self,
        request: Request[Any, Any, Any],
        patient_id: PatientId,
        data: BodyOf[PatientIn],
        principal: NamedDependency[Principal],
        update_patient: NamedDependency[UpdatePatient],
    ) -> Response[PatientOut]:
        version = expected_version(request)
        patient = await update_patient(
            principal, patient_id, data.to_domain(), expected_version=version
        )
        return versioned(PatientOut.of(patient), patient.version)

    @patch(
        "/{patient_id:int}",
        summary="Change some fields of one of the caller's patients",
        description="JSON (also application/merge-patch+json) or a form: fields left out are "
        "kept, null clears an optional field.",
        response_headers=ETAG_HEADERS,
        responses=problems(400, 401, 404, 412, 415),
    )
    async def change(
        self,
        request: Request[Any, Any, Any],
        patient_id: PatientId,
        principal: NamedDependency[Principal],
        patch_patient: NamedDependency[PatchPatient],
        # No body at all is read as {}, as DRF reads it: here, nothing to change.
        data: BodyOf[PatientPatchIn] = NO_PATIENT_CHANGES,
    ) -> Response[PatientOut]:
        version = expected_version(request)
        patient = await patch_patient(
            principal, patient_id, data.changes(), expected_version=version
        )
        return versioned(PatientOut.of(patient), patient.version)

    @delete(
        "/{patient_id:int}",
        summary="Delete one of the caller's patients and its mappings",
        responses=problems(400, 401, 404, 412),
    )
    async def remove(
        self,
        request: Request[Any, Any, Any],
        patient_id: PatientId,
        principal: NamedDependency[Principal],
        delete_patient: NamedDependency[DeletePatient],
    ) -> None:
        await delete_patient(principal, patient_id, expected_version=expected_version(request))

    @get(
        "/{patient_id:int}/doctors",
        summary="The doctors of one of the caller's patients",
        response_headers=PAGING_HEADERS,
        responses=problems(400, 401, 404),
    )
    async def doctors(
        self,
        request: Request[Any, Any, Any],
        patient_id: PatientId,
        principal: NamedDependency[Principal],
        page_request: NamedDependency[PageRequest],
        list_patient_doctors: NamedDependency[ListPatientDoctors],
    ) -> Response[list[DoctorOut]]:
        page = await list_patient_doctors(principal, patient_id, page_request)
        return paged_response(request, page, page_request, DoctorOut.of)
