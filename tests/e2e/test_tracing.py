"""OpenTelemetry: off unless the OTEL_* variables ask; on, a span per request named by its
route template, with the request id, and a child span per statement without its values."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from litestar.testing import AsyncTestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.http.asgi import tracing_wanted
from healthcare.entrypoints.settings import Settings
from healthcare.entrypoints.tracing import stop_tracing, tracing_plugins
from tests.e2e.conftest import sign_up


def test_tracing_is_off_unless_the_standard_variables_ask() -> None:
    assert not tracing_wanted({})
    assert tracing_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert tracing_wanted({"OTEL_TRACES_EXPORTER": "console"})
    assert not tracing_wanted({"OTEL_TRACES_EXPORTER": "none"})
    assert not tracing_wanted(
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    )


def test_the_worker_loads_no_tracing_and_no_metrics_when_off() -> None:
    """Litestar and redis import the OpenTelemetry API on their own when it is installed;
    ours (the SDK, the exporter, the instrumentation, tracing.py) and prometheus-client are
    never loaded, and no span is ever made."""
    code = (
        "import sys, os\n"
        "os.environ.update(DATABASE_URL='memory://', SECRET_KEY='s' * 40)\n"
        "from healthcare.entrypoints.http.asgi import create_asgi_app\n"
        "app = create_asgi_app()\n"
        "from opentelemetry import trace\n"
        "loaded = [m for m in sys.modules if m.startswith(('prometheus_client',\n"
        "    'healthcare.entrypoints.tracing', 'healthcare.entrypoints.metrics',\n"
        "    'opentelemetry.instrumentation.psycopg', 'opentelemetry.exporter'))]\n"
        # The access log wraps the body deadline, which wraps the Litestar app.
        "plugins = [type(p).__name__ for p in app.app.app.plugins._plugins]\n"
        "print(sorted(loaded), type(trace.get_tracer_provider()).__name__,\n"
        "    'OpenTelemetryPlugin' in plugins)\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "[] ProxyTracerProvider False"


@pytest.mark.postgres
async def test_a_request_is_a_span_with_its_statements_as_children(
    settings: Settings, postgres_url: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    plugins = tracing_plugins(provider)  # before the pool opens its connections
    try:
        on_postgres = dataclasses.replace(settings, database_url=postgres_url)
        app = create_app(build_container(on_postgres), plugins=plugins)
        async with AsyncTestClient(app) as client:
            account = await sign_up(client)
            patient_name = "Traced Patient Name"
            created = await client.post(
                "/api/patients/",
                headers=account.headers,
                json={"name": patient_name, "age": 52, "gender": "female"},
            )
            patient = created.json()["id"]
            exporter.clear()
            answer = await client.get(
                f"/api/patients/{patient}/",
                headers={**account.headers, "X-Request-ID": "traced-1"},
            )
            assert answer.status_code == 200
    finally:
        stop_tracing(provider)

    spans = exporter.get_finished_spans()
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.name == "GET /api/patients/{patient_id}"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/api/patients/{patient_id}"
    assert server.attributes["request.id"] == "traced-1"
    statements = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert statements, "no statement span"
    for span in statements:
        assert span.parent is not None
        assert span.parent.span_id == server.context.span_id
        assert span.context.trace_id == server.context.trace_id
    said = " ".join(str(dict(s.attributes or {})) for s in statements)
    assert "SELECT" in said
    assert "db.statement.parameters" not in said
    assert account.username not in said
    everything = " ".join(str(dict(s.attributes or {})) for s in spans)
    assert patient_name not in everything
    assert account.access not in everything
