"""The ASGI entry point the server imports: ``healthcare.entrypoints.http.asgi:create_asgi_app``."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from litestar.plugins import PluginProtocol

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.access_log import AccessLog
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.http.body_deadline import BodyDeadline
from healthcare.entrypoints.logs import configure_logging
from healthcare.entrypoints.settings import Settings, load_settings

if TYPE_CHECKING:
    from healthcare.entrypoints.metrics import Metrics

log = logging.getLogger(__name__)

# Allocations (net) between two collections of the youngest generation (CPython's default
# is 700, which a handful of requests reach), and young collections between two of each
# older generation (default 10). Requests leave almost nothing behind, so rarer
# collections find the same garbage for less work.
GC_THRESHOLDS = (7000, 20, 20)


def create_asgi_app() -> AccessLog:
    """Called once in each worker process."""
    configure_logging()
    settings = load_settings()
    metrics = _metrics(settings)
    plugins: list[PluginProtocol] = []
    stop_tracing = None
    if tracing_wanted(os.environ):
        from healthcare.entrypoints import tracing  # noqa: PLC0415

        provider = tracing.tracer_provider()
        plugins.extend(tracing.tracing_plugins(provider))

        def stop_tracing() -> None:
            tracing.stop_tracing(provider)

    litestar = create_app(build_container(settings), metrics=metrics, plugins=plugins)
    if stop_tracing is not None:
        litestar.on_shutdown.append(stop_tracing)  # after the app's own: spans of its end too
    # The body deadline wraps the app rather than being Litestar middleware: middleware would
    # give every route a second exception-handling layer, GETs included, which cost a read
    # 1.6 % of its instructions (callgrind, get-patient loop). The errors it raises still
    # reach Litestar's exception handlers: they are raised inside the handler's body read.
    app = AccessLog(BodyDeadline(litestar, settings.body_read_timeout_seconds), metrics=metrics)
    settle_garbage_collector()
    return app


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the standard OTEL_* variables ask for traces (see tracing.py)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(
        environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def _metrics(settings: Settings) -> Metrics | None:
    """Prometheus metrics when METRICS_TOKEN is set; else not even imported."""
    if not settings.metrics_enabled:
        return None
    from healthcare.entrypoints.metrics import MULTIPROC_VARIABLE, Metrics  # noqa: PLC0415

    if MULTIPROC_VARIABLE not in os.environ:
        log.warning(
            "%s is not set: /metrics reports only the worker that answers the scrape "
            "(`healthcare serve` sets it for all of its workers)",
            MULTIPROC_VARIABLE,
        )
    return Metrics()


def settle_garbage_collector() -> None:
    """Once the application is built: move everything alive into the permanent generation,
    so that no collection walks the framework, the container and the compiled statements
    again, and collect less often. (In `make bench` rounds this cut a page of doctors' p99
    at 64 connections about in half, and raised reads' throughput by a few per cent.)
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
