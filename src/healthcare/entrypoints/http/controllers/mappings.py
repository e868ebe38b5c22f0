"""Assigning doctors to the caller's patients."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import Parameter

from healthcare.application.mappings import (
    AssignDoctorToPatient,
    ListMappings,
    ListPatientMappings,
    UnassignDoctor,
)
from healthcare.application.paging import PageRequest
from healthcare.domain.entities import Principal
from healthcare.domain.listing import MappingFilter
from healthcare.entrypoints.http.bodies import BodyOf
from healthcare.entrypoints.http.filters import MAPPING_FILTER
from healthcare.entrypoints.http.openapi import BEARER, problems
from healthcare.entrypoints.http.paging import PAGING_HEADERS, paged_response
from healthcare.entrypoints.http.schemas import MAX_ID, MappingIn, MappingOut

# One path parameter serves both routes below: GET takes a patient id (as the seed's API
# document says), DELETE a mapping id.
ItemId = Annotated[
    int,
    Parameter(gt=0, le=MAX_ID, description="GET: a patient id. DELETE: a mapping id."),
]


class MappingController(Controller):
    path = "/api/mappings"
    tags = ["mappings"]
    security = BEARER

    @post(
        "/",
        summary="Assign a doctor to one of the caller's patients",
        responses=problems(400, 401, 404, 409),
    )
    async def create(
        self,
        data: BodyOf[MappingIn],
        principal: NamedDependency[Principal],
        assign_doctor: NamedDependency[AssignDoctorToPatient],
    ) -> MappingOut:
        return MappingOut.of(await assign_doctor(principal, data.patient, data.doctor))

    @get(
        "/",
        summary="Every mapping of the caller's patients (of one patient or doctor, if asked)",
        response_headers=PAGING_HEADERS,
        responses=problems(400, 401),
        dependencies=MAPPING_FILTER,
    )
    async def index(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        page_request: NamedDependency[PageRequest],
        mapping_filter: NamedDependency[MappingFilter],
        list_mappings: NamedDependency[ListMappings],
    ) -> Response[list[MappingOut]]:
        page = await list_mappings(principal, page_request, mapping_filter)
        return paged_response(request, page, page_request, MappingOut.of)

    @get(
        "/{item_id:int}",
        summary="The mappings of one of the caller's patients (by patient id)",
        response_headers=PAGING_HEADERS,
        responses=problems(400, 401, 404),
    )
    async def of_patient(
        self,
        request: Request[Any, Any, Any],
        item_id: ItemId,
        principal: NamedDependency[Principal],
        page_request: NamedDependency[PageRequest],
        list_patient_mappings: NamedDependency[ListPatientMappings],
    ) -> Response[list[MappingOut]]:
        page = await list_patient_mappings(principal, item_id, page_request)
        return paged_response(request, page, page_request, MappingOut.of)

    @delete(
        "/{item_id:int}",
        summary="Delete a mapping (by mapping id)",
        responses=problems(400, 401, 404),
    )
    async def remove(
        self,
        item_id: ItemId,
        principal: NamedDependency[Principal],
        unassign_doctor: NamedDependency[UnassignDoctor],
    ) -> None:
        await unassign_doctor(principal, item_id)
