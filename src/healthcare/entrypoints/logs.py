"""Structured logs: one JSON object per line, for every entrypoint."""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

import msgspec

# Fields an entrypoint may attach with ``extra=``; anything else on a record is ignored,
# so a stray attribute can never carry a secret into the log.
FIELDS = ("method", "path", "status", "duration_ms", "user_id", "request_id")
# Drivers that log statement parameters (patient data, hashes) at DEBUG: never below WARNING.
TALKATIVE_LIBRARIES = ("aiosqlite", "sqlalchemy.engine", "sqlalchemy.pool", "psycopg")


# Anything that is not plain JSON is written as its str().
_encode = msgspec.json.Encoder(enc_hook=str).encode


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        attributes = record.__dict__
        for field in FIELDS:
            if field in attributes:
                line[field] = attributes[field]
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return _encode(line).decode()


def quiet_libraries() -> None:
    for name in TALKATIVE_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


def configure_logging(level: str = "INFO") -> None:
    quiet_libraries()
    # The JSON lines never show the caller's file, thread or process: skip collecting them
    # for every record (logging's documented optimisations; the access log writes a line
    # per request).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"json": {"()": JsonFormatter}},
            "handlers": {
                "stderr": {"class": "logging.StreamHandler", "formatter": "json"},
            },
            "root": {"handlers": ["stderr"], "level": level},
        }
    )
