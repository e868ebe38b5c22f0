"""Parity: the API and the baseline must answer the benchmark's requests alike: the same
status, body (for successful answers) and paging headers (``X-Total-Count``, ``Link``)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from .runtime import log


class Answer(NamedTuple):
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: Any  # the decoded JSON, the text if it was not JSON, None if empty


class Fetch(Protocol):
    """One server's answer to a request (servers.request, bound to a server)."""

    def __call__(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> Answer: ...


def jwt_claims(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (both servers sign with the run's secret)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if not isinstance(claims, dict):
        raise ValueError("a JWT's claims are not a JSON object")
    return claims


def parity_checks(api: Fetch, baseline: Fetch, token: str, patient: int) -> list[dict[str, Any]]:
    """The same request to both servers must give the same status, body and paging headers."""
    checks = []
    for method, path in (
        ("GET", f"/api/patients/{patient}/"),
        ("GET", "/api/patients/?limit=20"),
        ("GET", "/api/patients/?limit=20&offset=20"),
        ("GET", f"/api/mappings/{patient}/"),
        ("GET", "/api/doctors/"),
        ("GET", "/api/patients/999999999/"),
    ):
        a = api(method, path, token=token)
        b = baseline(method, path, token=token)
        same_body = a[2] == b[2] if a[0] < 400 else True
        same = (
            a[0] == b[0]
            and same_body
            and a[1].get("x-total-count") == b[1].get("x-total-count")
            and _link_rels(a[1]) == _link_rels(b[1])
        )
        checks.append(
            {
                "request": f"{method} {path}",
                "api_status": a[0],
                "baseline_status": b[0],
                "same": same,
            }
        )
        if not same:
            log(
                f"parity: {method} {path} differs: api {a[0]} {str(a[2])[:300]} | "
                f"baseline {b[0]} {str(b[2])[:300]}"
            )
    return checks


def _link_rels(headers: Mapping[str, str]) -> list[str]:
    return re.findall(r'rel="(\w+)"', headers.get("link", ""))
