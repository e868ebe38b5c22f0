"""The shared doctor directory: everyone reads, the creator or an administrator changes."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import Parameter

from healthcare.application.doctors import (
    CreateDoctor,
    DeleteDoctor,
    GetDoctor,
    ListDoctors,
    UpdateDoctor,
)
from healthcare.application.paging import PageRequest
from healthcare.domain.entities import Principal
from healthcare.entrypoints.http.bodies import BodyOf
from healthcare.entrypoints.http.openapi import BEARER, problems
from healthcare.entrypoints.http.paging import PAGING_HEADERS, paged_response
from healthcare.entrypoints.http.schemas import MAX_ID, DoctorIn, DoctorOut

DoctorId = Annotated[int, Parameter(gt=0, le=MAX_ID, description="The doctor's id")]


class DoctorController(Controller):
    path = "/api/doctors"
    tags = ["doctors"]
    security = BEARER

    @post("/", summary="Add a doctor to the directory", responses=problems(400, 401))
    async def create(
        self,
        data: BodyOf[DoctorIn],
        principal: NamedDependency[Principal],
        create_doctor: NamedDependency[CreateDoctor],
    ) -> DoctorOut:
        return DoctorOut.of(await create_doctor(principal, data.to_domain()))

    @get("/", summary="Every doctor", response_headers=PAGING_HEADERS, responses=problems(400, 401))
    async def index(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        page_request: NamedDependency[PageRequest],
        list_doctors: NamedDependency[ListDoctors],
    ) -> Response[list[DoctorOut]]:
        page = await list_doctors(principal, page_request)
        return paged_response(request, page, page_request, DoctorOut.of)

    @get("/{doctor_id:int}", summary="One doctor", responses=problems(400, 401, 404))
    async def show(
        self,
        doctor_id: DoctorId,
        principal: NamedDependency[Principal],
        get_doctor: NamedDependency[GetDoctor],
    ) -> DoctorOut:
        return DoctorOut.of(await get_doctor(principal, doctor_id))

    @put(
        "/{doctor_id:int}",
        summary="Replace a doctor (its creator or an administrator)",
        responses=problems(400, 401, 403, 404),
    )
    async def replace(
        self,
        doctor_id: DoctorId,
        data: BodyOf[DoctorIn],
        principal: NamedDependency[Principal],
        update_doctor: NamedDependency[UpdateDoctor],
    ) -> DoctorOut:
        return DoctorOut.of(await update_doctor(principal, doctor_id, data.to_domain()))

    @delete(
        "/{doctor_id:int}",
        summary="Delete a doctor and its mappings (creator or admin)",
        responses=problems(400, 401, 403, 404),
    )
    async def remove(
        self,
        doctor_id: DoctorId,
        principal: NamedDependency[Principal],
        delete_doctor: NamedDependency[DeleteDoctor],
    ) -> None:
        await delete_doctor(principal, doctor_id)
