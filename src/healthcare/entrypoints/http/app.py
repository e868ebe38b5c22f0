"""The Litestar application, built around a container."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.openapi.spec import OpenAPIType, Parameter, Schema
from litestar.openapi.spec import RequestBody as RequestBodySpec
from litestar.plugins import PluginProtocol
from litestar.types import Message, Scope

from healthcare.entrypoints.admin.session import SessionCodec
from healthcare.entrypoints.admin.views import admin_router, remember_admin
from healthcare.entrypoints.container import Container, close_container, use_cases
from healthcare.entrypoints.http.bodies import (
    BODY_MEDIA_TYPES,
    MERGE_PATCH,
    RequestBody,
    RequestBodyDTO,
)
from healthcare.entrypoints.http.controllers import accounts, audit, service
from healthcare.entrypoints.http.controllers.doctors import DoctorController
from healthcare.entrypoints.http.controllers.mappings import MappingController
from healthcare.entrypoints.http.controllers.metrics import metrics_handler
from healthcare.entrypoints.http.controllers.patients import PatientController
from healthcare.entrypoints.http.dependencies import (
    principal_dependency,
    resolve_dependencies_in_turn,
    use_case_dependencies,
)
from healthcare.entrypoints.http.fhir.routes import fhir_router
from healthcare.entrypoints.http.headers import REQUEST_ID_HEADER, add_response_headers
from healthcare.entrypoints.http.openapi import openapi_config
from healthcare.entrypoints.http.options import TruthfulOptions
from healthcare.entrypoints.http.origin import trust_proxies
from healthcare.entrypoints.http.paging import page_request_dependency
from healthcare.entrypoints.http.preconditions import document_preconditions
from healthcare.entrypoints.http.problems import EXCEPTION_HANDLERS
from healthcare.entrypoints.http.throttling import address_rate_limit

if TYPE_CHECKING:  # imported only when metrics are on (see asgi.py)
    from healthcare.entrypoints.metrics import Metrics

MAX_BODY_BYTES = 1024 * 1024


def create_app(
    container: Container,
    *,
    metrics: Metrics | None = None,
    plugins: Sequence[PluginProtocol] = (),
) -> Litestar:
    """The app; with ``metrics`` (and ``METRICS_TOKEN`` set) it serves ``/metrics`` too;
    ``plugins``: tracing's, when it is on (see asgi.py)."""
    settings = container.settings()
    resolve_dependencies_in_turn()
    extra_handlers = []
    sampler = None
    if metrics is not None and settings.metrics_token is not None:
        from healthcare.entrypoints.metrics import Sampler  # noqa: PLC0415

        sampler = Sampler(
            metrics,
            pool=container.database().pool if settings.persistence == "sqlalchemy" else None,
            audit_trail=container.audit_trail(),
            hasher=container.password_hasher(),
        )
        extra_handlers.append(metrics_handler(metrics, sampler, settings.metrics_token))

    def start_background_work() -> None:
        container.audit_trail().start()
        if (feed := container.revocation_feed()) is not None:
            feed.start()
        if sampler is not None:
            sampler.start()

    async def release_resources() -> None:
        if sampler is not None:
            await sampler.stop()
        await close_container(container)

    options = TruthfulOptions()

    async def before_send(message: Message, scope: Scope) -> None:
        # One hook rather than two, and plain calls in it: Litestar awaits every hook for
        # every message of every response, and a second await cost a read 0.35 % of its
        # instructions (callgrind).
        add_response_headers(message, scope)
        if scope.get("method") == "OPTIONS":
            options(message, scope)

    admin_codec = SessionCodec(settings.secret_key, settings.admin_session_idle)

    app = Litestar(
        route_handlers=[
            Router(
                "/",
                route_handlers=accounts.THROTTLED_HANDLERS,
                middleware=[
                    address_rate_limit(container.counters(), settings.auth_requests_per_minute)
                ],
            ),
            *accounts.HANDLERS,
            *service.HANDLERS,
            *audit.HANDLERS,
            PatientController,
            DoctorController,
            MappingController,
            fhir_router(container.clock(), settings.default_page_size),
            admin_router(admin_codec, container.token_service(), container.clock()),
            *extra_handlers,
        ],
        dependencies={
            "principal": principal_dependency(container.token_service()),
            "page_request": page_request_dependency(settings.default_page_size),
            # Handlers ask for a use case by its provider's name: every one the container has.
            **use_case_dependencies(use_cases(container)),
        },
        dto=RequestBodyDTO,  # every handler's body: JSON or a form, read as DRF reads it
        exception_handlers=dict(EXCEPTION_HANDLERS),
        openapi_config=openapi_config() if settings.docs_enabled else None,
        cors_config=_cors(settings.cors_origins),
        before_send=[before_send],
        on_startup=[start_background_work],
        on_shutdown=[release_resources],
        request_max_body_size=MAX_BODY_BYTES,
        plugins=list(plugins),
        debug=False,
        logging_config=None,  # the entrypoint configures JSON logging for the process
    )
    options.learn(app)
    trust_proxies(app.state, settings.trusted_proxies)
    remember_admin(app.state, admin_codec, container.token_service(), container.clock())
    if settings.docs_enabled:
        _describe_request_bodies(app)
        _query_parameters_are_never_null(app)
        document_preconditions(
            app.openapi_schema, ("/api/patients/{patient_id}", "/api/doctors/{doctor_id}")
        )
    return app


def _cors(origins: tuple[str, ...]) -> CORSConfig | None:
    """Closed unless origins are named: browsers elsewhere may not read our responses."""
    if not origins:
        return None
    return CORSConfig(
        allow_origins=list(origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "If-Match",
            "If-None-Match",
            "Prefer",  # FHIR search: handling=strict
            REQUEST_ID_HEADER,
        ],
        expose_headers=["X-Total-Count", "Link", "ETag", "Location", REQUEST_ID_HEADER],
        allow_credentials=False,
        max_age=600,
    )


def _query_parameters_are_never_null(app: Litestar) -> None:
    """An optional query parameter is absent, never null (a query string cannot say null):
    drop the ``null`` Litestar gives an ``X | None`` parameter's schema."""
    for path_item in (app.openapi_schema.paths or {}).values():
        for operation in (path_item.get, path_item.delete, path_item.post):
            for parameter in (operation.parameters or []) if operation else []:
                schema = parameter.schema if isinstance(parameter, Parameter) else None
                if not isinstance(schema, Schema) or not schema.one_of:
                    continue
                kept = [
                    member
                    for member in schema.one_of
                    if not (isinstance(member, Schema) and member.type == OpenAPIType.NULL)
                ]
                if len(kept) == 1 and isinstance(kept[0], Schema):
                    schema.one_of = None
                    schema.type, schema.format = kept[0].type, kept[0].format
                else:
                    schema.one_of = kept


def _describe_request_bodies(app: Litestar) -> None:
    """Say in OpenAPI what the body reader does: every write route takes JSON and both form
    encodings, and no body takes unknown fields (read-only ones are listed, and ignored)."""
    schemas = app.openapi_schema.components.schemas or {}
    for body in RequestBody.__subclasses__():
        if (schema := schemas.get(body.__name__)) is not None:
            schema.additional_properties = False
            for attribute, value in body.document.items():
                setattr(schema, attribute, value)
            # Listed, so that no reader takes them for unknown fields; any value does.
            ignored = Schema(read_only=True, description="Read-only: accepted and ignored")
            if body.read_only:
                schema.properties = {
                    **(schema.properties or {}),
                    **dict.fromkeys(sorted(body.read_only), ignored),
                }
    for path_item in (app.openapi_schema.paths or {}).values():
        for operation in (path_item.post, path_item.put, path_item.patch):
            if operation is None or not isinstance(operation.request_body, RequestBodySpec):
                continue
            if operation is path_item.patch:
                operation.request_body.required = False  # no body is {}: nothing changes
            content = operation.request_body.content
            media = content.get(BODY_MEDIA_TYPES[0])
            if media is not None:
                extra = (MERGE_PATCH,) if operation is path_item.patch else ()
                for media_type in (*BODY_MEDIA_TYPES[1:], *extra):
                    content.setdefault(media_type, media)
