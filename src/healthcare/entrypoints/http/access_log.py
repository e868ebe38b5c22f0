"""One log line per HTTP request, matched route or not, written off the event loop.

The request path only notes what happened (a tuple); a thread of its own turns the notes into
log records every ``interval`` seconds. Formatted one at a time between requests, a line cost
the event loop about 60-80 µs of CPU in `make bench` (the logging code runs cold there);
formatted in batches on the writer thread, about 20 µs in all. Each line keeps the time its
request finished. What is pending is written when the app shuts down (the ASGI lifespan) and
at interpreter exit; a hard kill can lose the last ``interval`` of lines.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from healthcare.entrypoints.http.headers import request_id
from healthcare.entrypoints.logs import (
    CURRENT_REQUEST,
    JsonFormatter,
    RequestContext,
    TextFormatter,
)

if TYPE_CHECKING:  # imported only when metrics are on (see asgi.py)
    from healthcare.entrypoints.metrics import Metrics

log = logging.getLogger("healthcare.access")
Formatter = JsonFormatter | TextFormatter


class AccessLine(NamedTuple):
    at: float  # time.time() when the response was done
    method: str
    route: str  # the route's template (never the raw path, which carries ids)
    status: int
    duration_ms: float
    user_id: int | None
    request_id: str


class AccessLogWriter:
    """Lines pending for the log, handed to ``logging`` by a daemon thread.

    At most ``capacity`` lines wait (should the log's stream block, the service goes on and
    the excess is counted, then reported in one warning).
    """

    def __init__(self, interval: float = 0.1, capacity: int = 100_000) -> None:
        self._interval = interval
        self._capacity = capacity
        self._pending: deque[AccessLine] = deque()
        self._dropped = 0
        self._writing = threading.Lock()  # one flush at a time, so lines keep their order
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # A forked worker has no writer thread (threads do not survive a fork): start anew.
        os.register_at_fork(after_in_child=self._forget_thread)
        atexit.register(self.close)

    def add(self, line: AccessLine) -> None:
        if len(self._pending) >= self._capacity:
            self._dropped += 1
            return
        self._pending.append(line)
        if self._thread is None:
            self._start()

    def flush(self) -> None:
        """Write every pending line now, in the caller's thread."""
        with self._writing:
            pending = self._pending
            lines = [pending.popleft() for _ in range(len(pending))]
            if lines and log.isEnabledFor(logging.INFO):
                direct = _direct_handler()
                if direct is None:
                    for line in lines:
                        _emit(line)
                else:
                    try:
                        _write_directly(*direct, lines)
                    except Exception:  # the records' way reports it as logging does
                        for line in lines:
                            _emit(line)
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                log.warning("%d access log lines dropped: the log could not keep up", dropped)

    def close(self) -> None:
        self._stop.set()
        self.flush()

    def _start(self) -> None:
        with self._writing:
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def _forget_thread(self) -> None:
        self._thread = None
        self._writing = threading.Lock()


def _direct_handler() -> tuple[logging.StreamHandler[Any], Formatter] | None:
    """The one handler the access lines reach, when logging is as ``configure_logging`` left
    it (no handler, filter or level of the access logger's own; one stream handler at the
    root, with one of our formatters and only the request filter, which leaves an access
    record as it is): then the lines can be formatted and written straight to its stream,
    a batch at a time, skipping a record, the handler's lock and a flush per line. Anything
    else (a test capturing the log, a handler added by an operator) gets records."""
    if log.handlers or log.filters or not log.propagate:
        return None
    root = logging.getLogger()
    if len(root.handlers) != 1:
        return None
    [handler] = root.handlers
    formatter = handler.formatter
    if (
        type(handler) is not logging.StreamHandler
        or handler.level > logging.INFO
        or not isinstance(formatter, JsonFormatter | TextFormatter)
        or not all(isinstance(f, RequestContext) for f in handler.filters)
    ):
        return None
    return handler, formatter


def _write_directly(
    handler: logging.StreamHandler[Any], formatter: Formatter, lines: list[AccessLine]
) -> None:
    """What ``_emit`` and the handler would write for ``lines``, in one write."""
    name, level, end = log.name, logging.getLevelName(logging.INFO), handler.terminator
    text = "".join(
        formatter.format_fields(
            line.at,
            level,
            name,
            "request",
            _fields(line),
        )
        + end
        for line in lines
    )
    with handler.lock or contextlib.nullcontext():
        handler.stream.write(text)
        handler.flush()


def _fields(line: AccessLine) -> dict[str, Any]:
    """A line's fields, named and ordered as logs.FIELDS (both ways of writing use these)."""
    return {
        "method": line.method,
        "route": line.route,
        "status": line.status,
        "duration_ms": line.duration_ms,
        "user_id": line.user_id,
        "request_id": line.request_id,
    }


def _record_template() -> dict[str, Any]:
    """The attributes of an access log record, worked out once: ``LogRecord.__init__`` finds
    the file's base name and extension, the thread and process for every record, a quarter of
    a line's cost; the lines differ only in their time and the request's fields."""
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, "request", (), None)
    return dict(record.__dict__)


_TEMPLATE = _record_template()
_new_record = logging.LogRecord.__new__


def _emit(line: AccessLine) -> None:
    record = _new_record(logging.LogRecord)
    attributes = record.__dict__
    attributes.update(_TEMPLATE)
    attributes.update(
        created=line.at,
        msecs=(line.at - int(line.at)) * 1000,
        relativeCreated=_TEMPLATE["relativeCreated"] + (line.at - _TEMPLATE["created"]) * 1000,
        **_fields(line),
    )
    log.handle(record)


class AccessLog:
    """ASGI wrapper: method, route template (never the raw path with ids), status, duration,
    user id and request id. No bodies, headers or query strings, so no secrets.

    With ``metrics``, each request is also counted and timed there (the same measurements).
    """

    def __init__(
        self,
        app: ASGIApp,
        writer: AccessLogWriter | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.writer = writer or AccessLogWriter()
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind: str = scope["type"]  # (Litestar's Scope type leaves the lifespan out)
        if kind == "lifespan":
            await self.app(scope, receive, self._flushing_at_shutdown(send))
            return
        if kind != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        # Chosen now (every response carries it anyway), so that other records logged while
        # serving the request name it too (logs.py).
        request_id(scope)
        context = CURRENT_REQUEST.set(scope)
        metrics = self.metrics
        if metrics is not None:
            metrics.started()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            seconds = time.perf_counter() - started
            state: dict[str, Any] = scope.get("state", {})
            method = cast("HTTPScope", scope)["method"]
            route = scope.get("path_template") or "(unmatched)"
            self.writer.add(
                AccessLine(
                    time.time(),
                    method,
                    route,
                    status,
                    round(seconds * 1000, 2),
                    state.get("user_id"),
                    request_id(scope),
                )
            )
            if metrics is not None:
                metrics.finished(method, route, status, seconds)
            CURRENT_REQUEST.reset(context)

    def _flushing_at_shutdown(self, send: Send) -> Send:
        async def relay(message: Any) -> None:  # a lifespan message, which Message omits
            if message["type"] == "lifespan.shutdown.complete":
                self.writer.flush()
            await send(message)

        return relay
