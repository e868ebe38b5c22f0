"""OpenAPI document settings."""

from __future__ import annotations

from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from healthcare import __version__
from healthcare.entrypoints.http.problems import PROBLEM_JSON, ProblemDetails

BEARER_SCHEME = "BearerToken"
BEARER: list[dict[str, list[str]]] = [{BEARER_SCHEME: []}]


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Healthcare records API",
        version=__version__,
        description="Patients private to their creator, a shared directory of doctors, and "
        "patient-doctor mappings. Errors are RFC 9457 problem details.",
        path="/schema",
        render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        components=Components(
            security_schemes={
                BEARER_SCHEME: SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
            }
        ),
    )


_MEANINGS = {
    400: "Bad input: the problem's `errors` name each field",
    401: "Missing, invalid or expired credentials",
    403: "Visible, but the caller may not change it",
    404: "No such resource for this caller",
    409: "It would break a uniqueness rule",
    412: "If-Match named a version that is no longer current: nothing was changed",
    415: "The body is neither JSON nor a form",
    429: "Throttled: wait for the seconds in Retry-After",
    503: "The database (or Redis) cannot be reached in time: try again after Retry-After",
}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the problem-details responses a route may give.

    Every route that uses the database may also answer 503, so that one is always there.
    """
    return {
        status: ResponseSpec(
            data_container=ProblemDetails, media_type=PROBLEM_JSON, description=_MEANINGS[status]
        )
        for status in (*statuses, 503)
    }
