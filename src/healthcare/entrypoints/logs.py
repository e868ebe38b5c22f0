"""Logs for every entrypoint: plain text lines by default, one JSON object per line with
``LOG_FORMAT=json``.

Either way a record carries only the fields named in ``FIELDS`` beside its message: the
access log's (method, route template, status, duration, user id, request id), and, for any
other record logged while a request is being served, that request's id, user id and route.
Nothing else on a record is written, so a stray attribute can never carry a secret into the
log.
"""

from __future__ import annotations

import logging
import logging.config
import os
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec

# Fields an entrypoint may attach with ``extra=``; anything else on a record is ignored.
FIELDS = ("method", "route", "status", "duration_ms", "user_id", "request_id")
# Drivers that log statement parameters (patient data, hashes) at DEBUG: never below WARNING.
TALKATIVE_LIBRARIES = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "psycopg")
FORMATS = ("text", "json")

# The ASGI scope of the request this task serves (set by the access log's wrapper), so that a
# record logged on its behalf names it. Only its state and route are read, at logging time.
CURRENT_REQUEST: ContextVar[Mapping[str, Any] | None] = ContextVar("request", default=None)


# Anything that is not plain JSON is written as its str().
_encode = msgspec.json.Encoder(enc_hook=str).encode


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    attributes = record.__dict__
    return {field: attributes[field] for field in FIELDS if field in attributes}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = self._line(record.created, record.levelname, record.name, record.getMessage())
        line.update(_fields(record))
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return _encode(line).decode()

    def format_fields(
        self, created: float, level: str, logger: str, message: str, fields: dict[str, Any]
    ) -> str:
        """What ``format`` writes for a record with these attributes and ``fields`` (a
        subset of FIELDS, in their order), without the record."""
        return _encode({**self._line(created, level, logger, message), **fields}).decode()

    @staticmethod
    def _line(created: float, level: str, logger: str, message: str) -> dict[str, Any]:
        return {
            "time": datetime.fromtimestamp(created, UTC).isoformat(),
            "level": level.lower(),
            "logger": logger,
            "message": message,
        }


class TextFormatter(logging.Formatter):
    """``2026-12-03T19:40:01.123+00:00 INFO healthcare.access: request method=GET ...``"""

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")  # the last second written, as text

    def format(self, record: logging.LogRecord) -> str:
        line = self.format_fields(
            record.created, record.levelname, record.name, record.getMessage(), _fields(record)
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line

    def format_fields(
        self, created: float, level: str, logger: str, message: str, fields: dict[str, Any]
    ) -> str:
        """What ``format`` writes for a record with these attributes and ``fields`` (a
        subset of FIELDS, in their order), without the record."""
        line = f"{self._time(created)} {level} {logger}: {message}"
        for field, value in fields.items():
            line += f" {field}={value}"
        return line

    def _time(self, created: float) -> str:
        """What ``datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")``
        gives, with the date and time of day worked out once per second: the access log
        writes a line per request, and a datetime per line was an eighth of a line's cost."""
        second = int(created)
        micros = round((created - second) * 1_000_000)  # as fromtimestamp rounds
        if micros >= 1_000_000:
            second, micros = second + 1, micros - 1_000_000
        known, text = self._second
        if second != known:
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, text)
        return f"{text}.{micros // 1000:03d}+00:00"


class RequestContext(logging.Filter):
    """Adds the current request's id, user id and route to a record that has none."""

    def filter(self, record: logging.LogRecord) -> bool:
        scope = CURRENT_REQUEST.get()
        if scope is None or "request_id" in record.__dict__:
            return True
        state = scope.get("state") or {}
        if "request_id" in state:
            record.request_id = state["request_id"]
        if state.get("user_id") is not None:
            record.user_id = state["user_id"]
        if route := scope.get("path_template"):
            record.route = route
        return True


def log_format(environ: Mapping[str, str] | None = None) -> str:
    """``LOG_FORMAT``: ``text`` (the default) or ``json``; anything else is a ValueError."""
    raw = (os.environ if environ is None else environ).get("LOG_FORMAT", "").strip().lower()
    chosen = raw or "text"
    if chosen not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {raw!r}")
    return chosen


def quiet_libraries() -> None:
    for name in TALKATIVE_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(level: str = "INFO", environ: Mapping[str, str] | None = None) -> None:
    chosen = log_format(environ)
    quiet_libraries()
    # The lines never show the caller's file, thread or process: skip collecting them for
    # every record (logging's documented optimisations; the access log writes a line per
    # request).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "json": {"()": JsonFormatter},
                "text": {"()": TextFormatter},
            },
            "filters": {"request": {"()": RequestContext}},
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": chosen,
                    "filters": ["request"],
                },
            },
            "root": {"handlers": ["stderr"], "level": level},
        }
    )
