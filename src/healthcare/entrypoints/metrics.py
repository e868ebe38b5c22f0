"""Prometheus metrics, served at ``/metrics`` when ``METRICS_TOKEN`` is set.

Imported only then (``create_asgi_app``), so a service without metrics loads none of this.

Several worker processes: ``healthcare serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before granian forks its workers (``prepare_multiprocess_directory``), so that
prometheus-client's multiprocess mode keeps each worker's values in memory-mapped files
there, and a scrape answered by any worker adds up all of them (gauges: the sum over the
live workers). Without that variable (another server, or tests) each process reports only
its own.

Per request: a plain int up and down and one bucket of a per-worker tally (a Python list) up,
about 1 µs; writing prometheus-client's multiprocess values directly (each change takes a lock
and writes an mmap) cost 6-10 µs a request. ``Sampler`` folds the tallies into the metrics and
reads everything else from the adapters (pool, audit trail, hasher, database errors): once a
second in each worker, and in the worker answering a scrape just before it answers. So a
scrape shows every request that worker served before it, and those of the other workers up
to their last fold, at most ``SAMPLE_SECONDS`` ago.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
from bisect import bisect_left
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prometheus_multiprocess

from healthcare.adapters.audit_trail import BufferedAuditTrail
from healthcare.adapters.persistence.sqlalchemy.pool import DriverPool
from healthcare.adapters.security.passwords import BcryptPasswordHasher
from healthcare.entrypoints.metrics_directory import (
    MULTIPROC_VARIABLE,
    prepare_multiprocess_directory,
)

__all__ = ["MULTIPROC_VARIABLE", "Metrics", "Sampler", "prepare_multiprocess_directory"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE_SECONDS = 1.0
# Seconds; a get is a few milliseconds, a login (bcrypt) hundreds.
LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


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
        self._in_flight = 0
        # (route, method, status) -> requests per latency bucket (+Inf last), then their seconds
        self._tallies: dict[tuple[str, str, int], list[float]] = {}
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    def _live_gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(name, documentation, registry=self.registry, multiprocess_mode="livesum")

    # --- per request (the access log's wrapper calls these) ---------------------------------
    # Plain Python counts only: a prometheus-client value in multiprocess mode takes a lock and
    # writes an mmap on every change, several times a request. ``fold`` adds the counts to the
    # metrics; the Sampler calls it once a second and before answering a scrape.

    def started(self) -> None:
        self._in_flight += 1

    def finished(self, method: str, route: str, status: int, seconds: float) -> None:
        self._in_flight -= 1
        key = (route, method, status)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        tally[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # the last slot: above every bound
        tally[-1] += seconds

    def fold(self) -> None:
        """Add what this worker counted since the last fold to the metrics."""
        self.in_flight.set(self._in_flight)
        tallies, self._tallies = self._tallies, {}
        for (route, method, status), tally in tallies.items():
            children = self._children.get((route, method, status))
            if children is None:
                children = self._children[(route, method, status)] = (
                    self.requests.labels(route, method, str(status)),
                    self.latency.labels(route, method),
                    self.throttled.labels(route) if status == 429 else None,
                )
            count, latency, throttled = children
            served = sum(tally[:-1])
            count.inc(served)
            if throttled is not None:
                throttled.inc(served)
            # Histogram.observe, one bucket at a time (prometheus-client 0.26's own fields).
            buckets = latency._buckets
            for index, observed in enumerate(tally[:-1]):
                if observed:
                    buckets[index].inc(observed)
            latency._sum.inc(tally[-1])

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
        m.fold()
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
