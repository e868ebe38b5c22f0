"""Parity: the API and the baseline must answer the benchmark's requests alike.

A ratio means something only if both servers do the same work: the same status, the same body
(for successful answers; error documents differ on purpose, the API's are detailed), the same
paging headers (``X-Total-Count`` and the ``Link`` relations), tokens with the same claims,
and login and refresh answers of the same shape. The comparison functions here are pure (the
unit tests drive them with canned answers); ``check_parity`` asks both servers through a
``Fetch``. Any mismatch stops the run before the timed rounds (``require_parity``).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

# Claims whose values must agree for the same user and kind (jti, sid, iat and exp differ by
# nature; their presence and types are compared, and exp - iat as the lifetime).
SAME_VALUE_CLAIMS = ("iss", "sub", "user_id", "token_type", "adm")
# In a login or refresh answer, beside the tokens themselves.
SAME_VALUE_FIELDS = ("token_type", "expires_in")
LOGIN = "POST /api/auth/login/"
REFRESH = "POST /api/auth/token/refresh/"


class Answer(NamedTuple):
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: Any  # the decoded JSON, the text if it was not JSON, None if empty


class Fetch(Protocol):
    """One server's answer to a request (bench.harness.servers.request, bound to a server)."""

    def __call__(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> Answer: ...


@dataclass(frozen=True)
class Mismatch:
    check: str  # the request or token compared
    aspect: str  # what differs: status, a body's field, a header, a claim...
    api: str
    baseline: str

    def __str__(self) -> str:
        return f"{self.check} differs in {self.aspect}: api {self.api} | baseline {self.baseline}"


@dataclass
class Parity:
    """What check_parity found: the report's records and every mismatch."""

    records: list[dict[str, Any]] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    token_claims: dict[str, list[str]] = field(default_factory=dict)

    def add(self, check: str, api_status: int, baseline_status: int, found: list[Mismatch]) -> None:
        self.records.append(
            {
                "request": check,
                "api_status": api_status,
                "baseline_status": baseline_status,
                "same": not found,
            }
        )
        self.mismatches += found


class ParityMismatch(SystemExit):
    """The run stops (exit status 1) with a message that names each mismatch."""

    def __init__(self, mismatches: Iterable[Mismatch]) -> None:
        self.mismatches = tuple(mismatches)
        lines = "\n".join(f"  - {m}" for m in self.mismatches)
        super().__init__(
            f"parity: the API and the baseline differ in {len(self.mismatches)} place(s), "
            f"so their ratios would not compare the same work; no round was run:\n{lines}"
        )


def require_parity(mismatches: Iterable[Mismatch]) -> None:
    found = list(mismatches)
    if found:
        raise ParityMismatch(found)


# --- comparisons ---------------------------------------------------------------------------


def _short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "..."


def _names(own: Iterable[str], other: Iterable[str]) -> str:
    """A side's field or claim names, and those the other side lacks."""
    mine, theirs = sorted(own), set(other)
    extra = [name for name in mine if name not in theirs]
    return str(mine) + (f" ({', '.join(extra)} only here)" if extra else "")


def first_difference(api: Any, baseline: Any, where: str = "body") -> tuple[str, Any, Any] | None:
    """Where two decoded JSON values first differ (a path such as ``body[3].name``)."""
    if isinstance(api, dict) and isinstance(baseline, dict):
        if api.keys() != baseline.keys():
            return f"{where} fields", _names(api, baseline), _names(baseline, api)
        for key in api:
            found = first_difference(api[key], baseline[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(api, list) and isinstance(baseline, list):
        if len(api) != len(baseline):
            return f"{where} length", len(api), len(baseline)
        for i, (a, b) in enumerate(zip(api, baseline, strict=True)):
            found = first_difference(a, b, f"{where}[{i}]")
            if found:
                return found
        return None
    if type(api) is not type(baseline) or api != baseline:
        return where, api, baseline
    return None


def link_rels(headers: Mapping[str, str]) -> list[str]:
    return re.findall(r'rel="(\w+)"', headers.get("link", ""))


def compare_answers(check: str, api: Answer, baseline: Answer) -> list[Mismatch]:
    """The same read on both servers: status, body (if successful) and paging headers."""
    found: list[Mismatch] = []
    if api.status != baseline.status:
        found.append(Mismatch(check, "status", str(api.status), str(baseline.status)))
    if api.status < 400:
        difference = first_difference(api.body, baseline.body)
        if difference:
            where, a, b = difference
            found.append(Mismatch(check, where, _short(a), _short(b)))
    a_total, b_total = api.headers.get("x-total-count"), baseline.headers.get("x-total-count")
    if a_total != b_total:
        found.append(Mismatch(check, "header x-total-count", str(a_total), str(b_total)))
    if link_rels(api.headers) != link_rels(baseline.headers):
        found.append(
            Mismatch(
                check,
                "header link (rels)",
                str(link_rels(api.headers)),
                str(link_rels(baseline.headers)),
            )
        )
    return found


# A PATCH changes these on every answer: compared by type, not value.
CHANGING_FIELDS = ("updated_at",)


def compare_patch_answers(
    check: str, api: Answer, baseline: Answer, sent: Mapping[str, Any]
) -> list[Mismatch]:
    """The same PATCH, on the same patient, first on the API and then on the baseline: the
    same status; if successful, the same fields each of the same JSON type, the same values
    (but for updated_at), the values ``sent``, and a strong ETag that the baseline's change
    moved on by exactly one version."""
    found: list[Mismatch] = []
    if api.status != baseline.status:
        return [Mismatch(check, "status", str(api.status), str(baseline.status))]
    if api.status >= 400:
        return found
    a, b = api.body, baseline.body
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [Mismatch(check, "body", _short(a), _short(b))]
    if a.keys() != b.keys():
        return [Mismatch(check, "body fields", _names(a, b), _names(b, a))]
    for name in sorted(a):
        if type(a[name]) is not type(b[name]):
            found.append(
                Mismatch(check, f"body.{name} type", type(a[name]).__name__, type(b[name]).__name__)
            )
        elif name not in CHANGING_FIELDS and a[name] != b[name]:
            found.append(Mismatch(check, f"body.{name}", _short(a[name]), _short(b[name])))
    for name, value in sent.items():
        if a.get(name) != value:
            found.append(Mismatch(check, f"body.{name} (as sent)", _short(a.get(name)), "-"))
    tags = [_version(answer.headers.get("etag")) for answer in (api, baseline)]
    if tags[0] is None or tags[1] is None or tags[1] != tags[0] + 1:
        found.append(
            Mismatch(
                check,
                "header etag (the baseline's change is the next version)",
                str(api.headers.get("etag")),
                str(baseline.headers.get("etag")),
            )
        )
    return found


def _version(tag: str | None) -> int | None:
    """A strong ETag's version ("3" is 3); None if it is not one."""
    match = re.fullmatch(r'"(\d+)"', tag or "")
    return int(match.group(1)) if match else None


def _decode_segment(segment: str) -> dict[str, Any]:
    decoded = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    if not isinstance(decoded, dict):
        raise ValueError("a JWT segment is not a JSON object")
    return decoded


def jwt_header(token: str) -> dict[str, Any]:
    return _decode_segment(token.split(".", maxsplit=1)[0])


def jwt_claims(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified (both servers sign with the run's secret)."""
    return _decode_segment(token.split(".")[1])


def compare_claims(
    check: str, api: Mapping[str, Any], baseline: Mapping[str, Any]
) -> list[Mismatch]:
    """Two tokens of the same kind for the same user: the same claim names, each of the same
    JSON type, the same values where they must agree, and the same lifetime."""
    found: list[Mismatch] = []
    if api.keys() != baseline.keys():
        found.append(Mismatch(check, "claim names", _names(api, baseline), _names(baseline, api)))
    for name in sorted(api.keys() & baseline.keys()):
        a, b = api[name], baseline[name]
        if type(a) is not type(b):
            found.append(Mismatch(check, f"claim {name} type", type(a).__name__, type(b).__name__))
        elif name in SAME_VALUE_CLAIMS and a != b:
            found.append(Mismatch(check, f"claim {name}", repr(a), repr(b)))
    lifetimes = [
        claims["exp"] - claims["iat"]
        if isinstance(claims.get("exp"), int) and isinstance(claims.get("iat"), int)
        else None
        for claims in (api, baseline)
    ]
    if lifetimes[0] != lifetimes[1]:
        found.append(Mismatch(check, "lifetime (exp - iat)", str(lifetimes[0]), str(lifetimes[1])))
    return found


def compare_tokens(check: str, api: str, baseline: str) -> list[Mismatch]:
    """Two tokens: their JOSE headers and their claims."""
    found: list[Mismatch] = []
    a_header, b_header = jwt_header(api), jwt_header(baseline)
    if a_header != b_header:
        found.append(Mismatch(check, "JOSE header", _short(a_header), _short(b_header)))
    return found + compare_claims(check, jwt_claims(api), jwt_claims(baseline))


def compare_token_answers(check: str, api: Any, baseline: Any) -> list[Mismatch]:
    """Two login (or refresh) answers: the same fields, of the same types, the same
    ``token_type`` and ``expires_in``, and tokens that compare alike (compare_tokens)."""
    if not (isinstance(api, dict) and isinstance(baseline, dict)):
        return [Mismatch(check, "body", _short(api), _short(baseline))]
    found: list[Mismatch] = []
    if api.keys() != baseline.keys():
        found.append(Mismatch(check, "fields", _names(api, baseline), _names(baseline, api)))
    for name in sorted(api.keys() & baseline.keys()):
        a, b = api[name], baseline[name]
        if type(a) is not type(b):
            found.append(Mismatch(check, f"{name} type", type(a).__name__, type(b).__name__))
        elif name in SAME_VALUE_FIELDS and a != b:
            found.append(Mismatch(check, name, repr(a), repr(b)))
        elif name in ("access", "refresh") and isinstance(a, str):
            found += compare_tokens(f"{check} {name} token", a, b)
    return found


# --- the check -----------------------------------------------------------------------------


def read_requests(patient: int) -> tuple[tuple[str, str], ...]:
    """The reads compared: one of each scenario's kind, paging, and a missing patient; for
    search and filters, a page and the next, past the end, a search shorter than the index's
    pieces, LIKE's wildcards, and other orderings."""
    return (
        ("GET", f"/api/patients/{patient}/"),
        ("GET", "/api/patients/?limit=20"),
        ("GET", "/api/patients/?limit=20&offset=20"),
        ("GET", "/api/patients/?search=mar&limit=20"),
        ("GET", "/api/patients/?search=mar&limit=20&offset=20"),
        ("GET", "/api/patients/?search=MAR&limit=20&offset=100000"),
        ("GET", "/api/patients/?search=ad&limit=5&ordering=-name"),
        ("GET", "/api/patients/?search=a_%25&limit=20"),
        ("GET", "/api/patients/?gender=female&min_age=20&max_age=39&ordering=age&limit=20"),
        (
            "GET",
            "/api/patients/?gender=female&min_age=20&max_age=39&ordering=age&limit=20&offset=20",
        ),
        ("GET", "/api/patients/?ordering=-age,name&limit=10"),
        ("GET", "/api/patients/?min_age=60&max_age=20"),
        ("GET", f"/api/mappings/{patient}/"),
        ("GET", "/api/doctors/"),
        ("GET", "/api/patients/999999999/"),
    )


def patch_requests(patient: int) -> tuple[tuple[str, dict[str, Any]], ...]:
    """The PATCHes compared (each sent to the API, then the same to the baseline)."""
    return (
        (f"/api/patients/{patient}/", {"phone": "+1 555 0000001", "notes": "parity"}),
        (f"/api/patients/{patient}/", {"name": "Zoë Parity", "address": None}),
        (f"/api/patients/{patient}/", {"name": None}),
        ("/api/patients/999999999/", {"notes": "nobody's"}),
    )


def check_parity(
    api: Fetch,
    baseline: Fetch,
    *,
    token: str,
    patient: int,
    api_login: Mapping[str, Any],
    baseline_login: Mapping[str, Any],
) -> Parity:
    """Compare both servers: the reads (with the API-issued access token ``token`` of the
    owner of ``patient``), one login answer each (the same user's), and one refresh each
    with that login's refresh token (which it spends: rotation is on, as in the rounds)."""
    parity = Parity()
    for method, path in read_requests(patient):
        a = api(method, path, token=token)
        b = baseline(method, path, token=token)
        parity.add(
            f"{method} {path}", a.status, b.status, compare_answers(f"{method} {path}", a, b)
        )

    for path, body in patch_requests(patient):
        a = api("PATCH", path, body, token=token)
        b = baseline("PATCH", path, body, token=token)
        check = f"PATCH {path} {_short(body)}"
        parity.add(check, a.status, b.status, compare_patch_answers(check, a, b, body))

    parity.token_claims = {
        "api": sorted(jwt_claims(str(api_login["access"]))),
        "baseline": sorted(jwt_claims(str(baseline_login["access"]))),
    }
    parity.add(LOGIN, 200, 200, compare_token_answers(LOGIN, dict(api_login), dict(baseline_login)))

    a = api("POST", "/api/auth/token/refresh/", {"refresh": api_login["refresh"]})
    b = baseline("POST", "/api/auth/token/refresh/", {"refresh": baseline_login["refresh"]})
    found = []
    if a.status != b.status or a.status != 200:
        found.append(
            Mismatch(
                REFRESH, "status", f"{a.status} {_short(a.body)}", f"{b.status} {_short(b.body)}"
            )
        )
    else:
        found += compare_token_answers(REFRESH, a.body, b.body)
    parity.add(REFRESH, a.status, b.status, found)
    return parity
