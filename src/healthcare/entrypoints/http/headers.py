"""Headers every response carries: a request id, nosniff, and no-store on API data."""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

REQUEST_ID_HEADER = "x-request-id"
# A caller's id is echoed only when it is short and plain, so it cannot inject into logs.
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(scope: Scope) -> str:
    """The request's id: the caller's when well-formed, else a new one (kept in the scope)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    if (known := state.get("request_id")) is not None:
        return str(known)
    incoming = next(
        (
            value.decode("latin-1")
            for name, value in scope.get("headers", [])
            if name == REQUEST_ID_HEADER.encode()
        ),
        "",
    )
    chosen = incoming if _WELL_FORMED.fullmatch(incoming) else uuid.uuid4().hex
    state["request_id"] = chosen
    return chosen


async def add_response_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    headers = MutableScopeHeaders.from_message(message)
    headers["X-Request-ID"] = request_id(scope)
    headers["X-Content-Type-Options"] = "nosniff"
    if scope.get("path", "").startswith("/api/"):
        # Health data and tokens must not be kept by browsers or shared caches.
        headers["Cache-Control"] = "no-store"
