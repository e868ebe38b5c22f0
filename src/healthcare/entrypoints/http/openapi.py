"""OpenAPI document settings."""

from __future__ import annotations

from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from healthcare import __version__

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
