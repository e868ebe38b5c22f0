"""The ASGI entry point the server imports: ``healthcare.entrypoints.http.asgi:create_asgi_app``."""

from __future__ import annotations

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.access_log import AccessLog
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.logs import configure_logging
from healthcare.entrypoints.settings import load_settings


def create_asgi_app() -> AccessLog:
    configure_logging()
    return AccessLog(create_app(build_container(load_settings())))
