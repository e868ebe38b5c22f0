"""One log line per HTTP request, matched route or not."""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from healthcare.entrypoints.http.headers import request_id

log = logging.getLogger("healthcare.access")


class AccessLog:
    """ASGI wrapper: method, path template (never the raw path with ids), status, duration,
    user id and request id. No bodies, headers or query strings, so no secrets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            state: dict[str, Any] = scope.get("state", {})
            log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path_template") or "(unmatched)",
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "user_id": state.get("user_id"),
                    "request_id": request_id(scope),
                },
            )
