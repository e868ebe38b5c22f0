"""OpenTelemetry tracing, switched on by the standard ``OTEL_*`` variables.

Off unless ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp`` or ``console``) or an OTLP
endpoint is set (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``),
and ``OTEL_SDK_DISABLED`` is not true. Off, this module is never imported (``tracing_wanted``
lives in ``asgi.py``'s import-free check), so no request pays for it.

On: one server span per request (Litestar's OpenTelemetry plugin), named by the route's
template, with the request id as ``request.id``; a child span per PostgreSQL statement
(psycopg's instrumentation: the statement text with its placeholders, never parameter
values); exported in batches (OTLP over HTTP/protobuf, configured by the usual
``OTEL_EXPORTER_OTLP_*``, ``OTEL_SERVICE_NAME`` and ``OTEL_TRACES_SAMPLER`` variables).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from litestar.config.app import AppConfig
from litestar.plugins import InitPlugin
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.types import ASGIApp, Receive, Scope, Send
from opentelemetry import trace
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE
from opentelemetry.trace import Span

from healthcare.entrypoints.http.headers import request_id

REQUEST_ID_ATTRIBUTE = "request.id"
DEFAULT_SERVICE_NAME = "healthcare"
UNMATCHED = "(unmatched)"


def tracer_provider(environ: Mapping[str, str] | None = None) -> TracerProvider:
    """A provider that exports as the environment says (the SDK reads the rest of it)."""
    env = os.environ if environ is None else environ
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": DEFAULT_SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(_exporter(env)))
    return provider


def _exporter(env: Mapping[str, str]) -> SpanExporter:
    name = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if name == "console":
        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER must be otlp, console or none, not {name!r}")
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol != "http/protobuf":
        raise ValueError(f"Only OTLP over http/protobuf is installed, not {protocol!r}")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    return OTLPSpanExporter()


def span_details(scope: Any) -> tuple[str, dict[str, Any]]:
    """The span's name when it starts, before routing: ``GET (unmatched)``, renamed by
    ``_name_by_route`` once the route is known. Never the path, which carries ids."""
    method = scope.get("method", "")
    return f"{method} {UNMATCHED}".strip(), {HTTP_ROUTE: UNMATCHED}


def _name_by_route(app: ASGIApp) -> ASGIApp:
    """Runs after routing (as every Litestar middleware): the request's span takes the
    route's template as its name and ``http.route``."""

    async def named(scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()
        route = scope.get("path_template")
        if route and span.is_recording():
            span.update_name(f"{scope.get('method', '')} {route}".strip())
            span.set_attribute(HTTP_ROUTE, route)
        await app(scope, receive, send)

    return named


def _name_the_request(span: Span, scope: Any) -> None:
    if span.is_recording():
        span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id(scope))


class RouteNamedSpans(InitPlugin):
    """Names the request's span by the route's template (Litestar finds its own plugin by
    class name, so this is a plugin beside it rather than a subclass)."""

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.middleware.append(_name_by_route)
        return app_config


def tracing_plugins(provider: TracerProvider) -> list[InitPlugin]:
    """The plugins for ``create_app``; statements are traced from now on too."""
    PsycopgInstrumentor().instrument(
        tracer_provider=provider, skip_dep_check=True, enable_commenter=False
    )
    config = OpenTelemetryConfig(
        tracer_provider=provider,
        scope_span_details_extractor=span_details,
        server_request_hook_handler=_name_the_request,
        exclude_spans=["receive", "send"],
    )
    return [OpenTelemetryPlugin(config), RouteNamedSpans()]


def stop_tracing(provider: TracerProvider) -> None:
    PsycopgInstrumentor().uninstrument()
    provider.shutdown()
