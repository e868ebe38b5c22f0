"""Liveness and readiness."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from healthcare.application.health import CheckReadiness
from healthcare.entrypoints.http.schemas import StatusOut


@get("/health", summary="200 while the process runs", tags=["service"])
async def health() -> StatusOut:
    return StatusOut("ok")


@get("/ready", summary="200 when the database answers, else 503", tags=["service"])
async def ready(check_readiness: NamedDependency[CheckReadiness]) -> Response[StatusOut]:
    if await check_readiness():
        return Response(StatusOut("ready"), status_code=HTTP_200_OK)
    return Response(StatusOut("database unavailable"), status_code=HTTP_503_SERVICE_UNAVAILABLE)


HANDLERS = [health, ready]
