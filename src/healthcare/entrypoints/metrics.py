"""Prometheus metrics, served at ``/metrics`` when ``METRICS_TOKEN`` is set.

Imported only then (``create_asgi_app``), so a service without metrics loads none of this.

Several worker processes: ``healthcare serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before granian forks its workers (``prepare_multiprocess_directory``), so that
prometheus-client's multiprocess mode keeps each worker's values in memory-mapped files
there, and a scrape answered by any worker adds up all of them (gauges: the sum over the
live workers). Without that variable (another server, or tests) each process reports only
its own.

Per request: the in-flight gauge up and down, one counter and one histogram (label children
cached, so no label lookup), about 6 µs in all. Everything else is read from the adapters
(pool, audit trail, hasher, database errors) by ``Sampler``: once a second in each worker,
and by the worker answering a scrape just before it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import tempfile
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess

from healthcare.adapters.audit_trail import BufferedAuditTrail
from healthcare.adapters.persistence.sqlalchemy.pool import DriverPool
from healthcare.adapters.security.passwords import BcryptPasswordHasher

log = logging.getLogger(__name__)

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE_SECONDS = 1.0
# Seconds; a get is a few milliseconds, a login (bcrypt) hundreds.
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def prepare_multiprocess_directory(environ: MutableMapping[str, str]) -> Path | None:
    """Before the workers start: an empty directory for their metric files, named in
    ``environ`` (which the workers inherit). The operator's own, emptied, if set; else a new
    temporary one, returned so that the caller removes it at the end."""
    if chosen := environ.get(MULTIPROC_VARIABLE):
        directory = Path(chosen)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # a previous run's values are not this run's
            stale.unlink()
        return None
    created = Path(tempfile.mkdtemp(prefix="healthcare-metrics-"))
    environ[MULTIPROC_VARIABLE] = str(created)
    return created


def token_matches(expected: str, authorization: str) -> bool:
    scheme, _, given = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )


class Metrics:
    """Every metric of the service, in a registry of its own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.multiprocess_dir = os.environ.get(MULTIPROC_VARIABLE)
        r = self.registry
        self.requests = Counter(
            "healthcare_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "healthcare_http_request_duration_seconds",
            "Time from a request's arrival to its response's end, by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "healthcare_http_requests_in_flight",
            "Requests being served now",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.throttled = Counter(
            "healthcare_throttle_refusals",
            "Requests refused by a throttle (429), by route template",
            ["route"],
            registry=r,
        )
        self.pool_size = self._live_gauge("healthcare_db_pool_size", "Database connections open")
        self.pool_in_use = self._live_gauge(
            "healthcare_db_pool_in_use", "Database connections checked out by requests"
        )
        self.pool_waiting = self._live_gauge(
            "healthcare_db_pool_waiting", "Requests waiting for a database connection"
        )
        self.db_errors = Counter(
            "healthcare_db_errors",
            "Database errors by kind: statement_timeout, lock_timeout, pool_timeout, "
            "connection_lost, deadlock, serialization, integrity, connection, other",
            ["kind"],
            registry=r,
        )
        self.audit_buffered = Counter(
            "healthcare_audit_events_buffered",
            "Audit events of reads and refusals put in the buffer",
            registry=r,
        )
        self.audit_written = Counter(
            "healthcare_audit_events_written",
            "Audit events written from the buffer to the database",
            registry=r,
        )
        self.audit_pending = self._live_gauge(
            "healthcare_audit_events_pending", "Audit events in the buffer, not yet written"
        )
        self.bcrypt_queue = self._live_gauge(
            "healthcare_bcrypt_queue_depth", "Password hashes waiting for a thread or running"
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def _live_gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(name, documentation, registry=self.registry, multiprocess_mode="livesum")

    # --- per request (the access log's wrapper calls these) ---------------------------------

    def started(self) -> None:
        self.in_flight.inc()

    def finished(self, method: str, route: str, status: int, seconds: float) -> None:
        self.in_flight.dec()
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            if status == 429:
                self.throttled.labels(route)  # listed from its first refusal on
        count, latency = children
        count.inc()
        latency.observe(seconds)
        if status == 429:
            self.throttled.labels(route).inc()

    # --- a scrape ---------------------------------------------------------------------------

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        _forget_dead_workers(Path(self.multiprocess_dir))
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)


def _forget_dead_workers(directory: Path) -> None:
    """A worker that died (and was replaced) leaves its live gauges' files: drop them, so
    that its last in-flight count and pool size stop adding up."""
    for path in directory.glob("gauge_live*_*.db"):
        try:
            pid = int(path.stem.rsplit("_", 1)[1])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            prometheus_multiprocess.mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
        except PermissionError:
            continue


class Sampler:
    """Copies what the adapters count into the metrics: gauges as they are now, counters by
    what they grew since the last sample."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        pool: DriverPool | None,
        audit_trail: BufferedAuditTrail,
        hasher: object,
    ) -> None:
        self._metrics = metrics
        self._pool = pool
        self._trail = audit_trail
        self._hasher = hasher if isinstance(hasher, BcryptPasswordHasher) else None
        self._seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        m = self._metrics
        if self._pool is not None:
            stats = self._pool.stats()
            m.pool_size.set(stats.size)
            m.pool_in_use.set(stats.in_use)
            m.pool_waiting.set(stats.waiting)
            for kind, count in list(self._pool.errors.items()):
                self._grow(f"db:{kind}", count, m.db_errors.labels(kind).inc)
        self._grow("audit:buffered", self._trail.buffered, m.audit_buffered.inc)
        self._grow("audit:written", self._trail.written, m.audit_written.inc)
        m.audit_pending.set(self._trail.pending)
        m.bcrypt_queue.set(self._hasher.queued if self._hasher is not None else 0)

    def _grow(self, key: str, total: float, inc: Callable[[float], None]) -> None:
        grown = total - self._seen.get(key, 0)
        if grown > 0:
            inc(grown)
            self._seen[key] = total

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._sample_forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.sample()

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_SECONDS)
            try:
                self.sample()
            except Exception:  # a sample is not worth a worker
                log.exception("Could not sample the metrics")
