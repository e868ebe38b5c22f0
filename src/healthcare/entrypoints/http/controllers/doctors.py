"""The shared doctor directory: everyone reads, the creator or an administrator changes."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import Parameter

from healthcare.application.doctors import (
    CreateDoctor,
    DeleteDoctor,
    GetDoctor,
    ListDoctors,
    PatchDoctor,
    UpdateDoctor,
)
from healthcare.application.paging import PageRequest
from healthcare.domain.entities import Principal
from healthcare.domain.listing import DoctorFilter
from healthcare.entrypoints.http.bodies import BodyOf
from healthcare.entrypoints.http.filters import DOCTOR_FILTER
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
    NO_DOCTOR_CHANGES,
    DoctorIn,
    DoctorOut,
    DoctorPatchIn,
)

DoctorId = Annotated[int, Parameter(gt=0, le=MAX_ID, description="The doctor's id")]


class DoctorController(Controller):
    path = "/api/doctors"
    tags = ["doctors"]
    security = BEARER

    @post(
        "/",
        summary="Add a doctor to the directory",
        response_headers=ETAG_HEADERS,
        responses=problems(400, 401, 415),
    )
    async def create(
        self,
        data: BodyOf[DoctorIn],
        principal: NamedDependency[Principal],
        create_doctor: NamedDependency[CreateDoctor],
    ) -> Response[DoctorOut]:
        doctor = await create_doctor(principal, data.to_domain())
        return versioned(DoctorOut.of(doctor), doctor.version, status_code=201)

    @get(
        "/",
        summary="The directory: searched, filtered and ordered as asked",
        response_headers=PAGING_HEADERS,
        responses=problems(400, 401),
        dependencies=DOCTOR_FILTER,
    )
    async def index(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        page_request: NamedDependency[PageRequest],
        doctor_filter: NamedDependency[DoctorFilter],
        list_doctors: NamedDependency[ListDoctors],
    ) -> Response[list[DoctorOut]]:
        page = await list_doctors(principal, page_request, doctor_filter)
        return paged_response(request, page, page_request, DoctorOut.of)

    @get(
        "/{doctor_id:int}",
        summary="One doctor",
        response_headers=ETAG_HEADERS,
        responses={**problems(400, 401, 404), **NOT_MODIFIED},
    )
    async def show(
        self,
        request: Request[Any, Any, Any],
        doctor_id: DoctorId,
        principal: NamedDependency[Principal],
        get_doctor: NamedDependency[GetDoctor],
    ) -> Response[DoctorOut]:
        doctor = await get_doctor(principal, doctor_id)
        if not_modified(request, doctor.version):
            return versioned(None, doctor.version, status_code=304)
        return versioned(DoctorOut.of(doctor), doctor.version)

    @put(
        "/{doctor_id:int}",
        summary="Replace a doctor (its creator or an administrator)",
        response_headers=ETAG_HEADERS,
        responses=problems(400, 401, 403, 404, 412, 415),
    )
    async def replace(
        self,
        request: Request[Any, Any, Any],
        doctor_id: DoctorId,
        data: BodyOf[DoctorIn],
        principal: NamedDependency[Principal],
        update_doctor: NamedDependency[UpdateDoctor],
    ) -> Response[DoctorOut]:
        version = expected_version(request)
        doctor = await update_doctor(
            principal, doctor_id, data.to_domain(), expected_version=version
        )
        return versioned(DoctorOut.of(doctor), doctor.version)

    @patch(
        "/{doctor_id:int}",
        summary="Change some fields of a doctor (its creator or an administrator)",
        description="JSON (also application/merge-patch+json) or a form: fields left out are "
        "kept, null clears an optional field.",
        response_headers=ETAG_HEADERS,
        responses=problems(400, 401, 403, 404, 412, 415),
    )
    async def change(
        self,
        request: Request[Any, Any, Any],
        doctor_id: DoctorId,
        principal: NamedDependency[Principal],
        patch_doctor: NamedDependency[PatchDoctor],
        # No body at all is read as {}, as DRF reads it: here, nothing to change.
        data: BodyOf[DoctorPatchIn] = NO_DOCTOR_CHANGES,
    ) -> Response[DoctorOut]:
        version = expected_version(request)
        doctor = await patch_doctor(principal, doctor_id, data.changes(), expected_version=version)
        return versioned(DoctorOut.of(doctor), doctor.version)

    @delete(
        "/{doctor_id:int}",
        summary="Delete a doctor and its mappings (creator or admin)",
        responses=problems(400, 401, 403, 404, 412),
    )
    async def remove(
        self,
        request: Request[Any, Any, Any],
        doctor_id: DoctorId,
        principal: NamedDependency[Principal],
        delete_doctor: NamedDependency[DeleteDoctor],
    ) -> None:
        await delete_doctor(principal, doctor_id, expected_version=expected_version(request))
