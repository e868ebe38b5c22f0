"""Liveness and readiness."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from healthcare.application.health import CheckReadiness
from healthcare.entrypoints.http.schemas import ReadinessOut, StatusOut


@get("/health", summary="200 while the process runs", tags=["service"])
async def health() -> StatusOut:
    return StatusOut("ok")


@get(
    "/ready",
    summary="200 when the database (and Redis, if configured) answer, else 503",
    description="`checks` names each dependency: `ok` or `unavailable`.",
    tags=["service"],
)
async def ready(check_readiness: NamedDependency[CheckReadiness]) -> Response[ReadinessOut]:
    readiness = await check_readiness()
    checks = {name: "ok" if up else "unavailable" for name, up in readiness.checks.items()}
    if readiness.ready:
        return Response(ReadinessOut("ready", checks), status_code=HTTP_200_OK)
    return Response(ReadinessOut("unavailable", checks), status_code=HTTP_503_SERVICE_UNAVAILABLE)


HANDLERS = [health, ready]
