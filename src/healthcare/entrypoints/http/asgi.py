"""The ASGI entry point the server imports: ``healthcare.entrypoints.http.asgi:create_asgi_app``."""

from __future__ import annotations

import gc
import logging
import os
from typing import TYPE_CHECKING

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.access_log import AccessLog
from healthcare.entrypoints.http.app import create_app
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
    app = AccessLog(create_app(build_container(settings), metrics=metrics), metrics=metrics)
    settle_garbage_collector()
    return app


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
