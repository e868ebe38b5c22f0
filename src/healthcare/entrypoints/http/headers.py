"""Headers every response carries: a request id, nosniff, and no-store on API data."""

from __future__ import annotations

import re
import secrets
from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

REQUEST_ID_HEADER = "x-request-id"
# A caller's id is echoed only when it is short and plain, so it cannot inject into logs.
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{1,128}")


_REQUEST_ID_NAME = REQUEST_ID_HEADER.encode()
# What every response gets; the last only under /api/ (health data and tokens must not be
# kept by browsers or shared caches).
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_NO_STORE = (b"cache-control", b"no-store")
_OURS = frozenset((_REQUEST_ID_NAME, _NOSNIFF[0], _NO_STORE[0]))


def request_id(scope: Scope) -> str:
    """The request's id: the caller's when well-formed, else a new one (kept in the scope)."""
    state: dict[str, Any] = scope.setdefault("state", {})
    if (known := state.get("request_id")) is not None:
        return str(known)
    incoming = ""
    for name, value in scope.get("headers", ()):
        if name == _REQUEST_ID_NAME:
            incoming = value.decode("latin-1")
            break
    chosen = incoming if _WELL_FORMED.fullmatch(incoming) else secrets.token_hex(16)
    state["request_id"] = chosen
    return chosen


def add_response_headers(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start":
        return
    ours = [(_REQUEST_ID_NAME, request_id(scope).encode("latin-1")), _NOSNIFF]
    if scope.get("path", "").startswith("/api/"):
        ours.append(_NO_STORE)
    raw = message.setdefault("headers", [])
    if isinstance(raw, list) and not any(name.lower() in _OURS for name, _ in raw):
        raw.extend(ours)  # the usual case, without parsing the headers
        return
    headers = MutableScopeHeaders.from_message(message)  # replaces what a handler set
    for name, value in ours:
        headers[name.decode()] = value.decode("latin-1")
