"""The benchmark's parity check (bench/harness/parity.py): a difference between the API and the
baseline must stop the run, and each one must be named. No servers: canned answers."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from harness.parity import (
    Answer,
    Mismatch,
    ParityMismatch,
    check_parity,
    compare_answers,
    compare_claims,
    compare_patch_answers,
    compare_token_answers,
    require_parity,
)

NOW = 1_750_000_000
PATIENT = {"id": 1, "name": "Ada Turing", "age": 37, "gender": "Female", "email": None}
PAGE = {"x-total-count": "100", "link": '<http://x/?limit=20&offset=20>; rel="next"'}


def _segment(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def token(kind: str = "access", **changes: Any) -> str:
    claims: dict[str, Any] = {
        "iss": "healthcare",
        "sub": "1",
        "user_id": 1,
        "token_type": kind,
        "jti": "0" * 32,
        "iat": NOW,
        "exp": NOW + (14_400 if kind == "access" else 604_800),
        **({"adm": False} if kind == "access" else {"sid": "s" * 32}),
        **changes,
    }
    claims = {name: value for name, value in claims.items() if value is not None}
    return f"{_segment({'alg': 'HS256', 'typ': 'JWT'})}.{_segment(claims)}.signature"


def pair(**access_changes: Any) -> dict[str, Any]:
    return {
        "access": token(**access_changes),
        "refresh": token("refresh"),
        "expires_in": 14_400,
        "token_type": "Bearer",
    }


class FakeServer:
    """A server that answers from a table; unknown requests are 404s."""

    def __init__(self, answers: dict[tuple[str, str], Answer]) -> None:
        self.answers = answers

    def __call__(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> Answer:
        return self.answers.get((method, path), Answer(404, {}, {"detail": "Not Found"}))


def answers(
    patient: Answer | None = None, refresh: Answer | None = None
) -> dict[tuple[str, str], Answer]:
    """One server's answers: the reads check_parity makes (the others are 404s on both)."""
    return {
        ("GET", "/api/patients/1/"): patient or Answer(200, {}, PATIENT),
        ("GET", "/api/patients/?limit=20"): Answer(200, PAGE, [PATIENT]),
        ("POST", "/api/auth/token/refresh/"): refresh or Answer(200, {}, pair()),
    }


def run_check(
    api: dict[tuple[str, str], Answer] | None = None,
    baseline: dict[tuple[str, str], Answer] | None = None,
    api_login: dict[str, Any] | None = None,
    baseline_login: dict[str, Any] | None = None,
) -> list[Mismatch]:
    parity = check_parity(
        FakeServer(api or answers()),
        FakeServer(baseline or answers()),
        token="t",
        patient=1,
        api_login=api_login or pair(),
        baseline_login=baseline_login or pair(),
    )
    return parity.mismatches


def test_servers_that_answer_alike_pass() -> None:
    assert run_check() == []
    require_parity([])  # nothing to raise


def test_error_bodies_are_not_compared_but_their_status_is() -> None:
    api = Answer(404, {}, {"type": "about:blank", "title": "Not Found", "status": 404})
    assert compare_answers("GET /x", api, Answer(404, {}, {"detail": "Not Found"})) == []
    assert [m.aspect for m in compare_answers("GET /x", api, Answer(401, {}, None))] == ["status"]


@pytest.mark.parametrize(
    ("baseline", "aspect"),
    [
        (Answer(200, PAGE, [{**PATIENT, "age": 38}]), "body[0].age"),
        (Answer(200, PAGE, [{**PATIENT, "age": 37.0}]), "body[0].age"),  # a float is not an int
        (Answer(200, PAGE, [PATIENT, PATIENT]), "body length"),
        (Answer(200, PAGE, [{"id": 1}]), "body[0] fields"),
        (Answer(200, {**PAGE, "x-total-count": "99"}, [PATIENT]), "header x-total-count"),
        (Answer(200, {"x-total-count": "100"}, [PATIENT]), "header link (rels)"),
        (Answer(500, PAGE, [PATIENT]), "status"),
    ],
)
def test_each_difference_in_a_read_is_named(baseline: Answer, aspect: str) -> None:
    found = compare_answers("GET /api/patients/?limit=20", Answer(200, PAGE, [PATIENT]), baseline)
    assert [m.aspect for m in found] == [aspect]


@pytest.mark.parametrize(
    ("changes", "aspect"),
    [
        ({"user_id": None}, "claim names"),  # the baseline before it carried simplejwt's claim
        ({"user_id": "1"}, "claim user_id type"),
        ({"sub": "2"}, "claim sub"),
        ({"adm": True}, "claim adm"),
        ({"exp": NOW + 900}, "lifetime (exp - iat)"),
    ],
)
def test_each_difference_in_token_claims_is_named(changes: dict[str, Any], aspect: str) -> None:
    api = json.loads(base64.urlsafe_b64decode(token().split(".")[1] + "=="))
    baseline = json.loads(base64.urlsafe_b64decode(token(**changes).split(".")[1] + "=="))
    assert [m.aspect for m in compare_claims("access", api, baseline)] == [aspect]


def test_a_refresh_answer_without_the_rotated_token_is_a_mismatch() -> None:
    unrotated = {k: v for k, v in pair().items() if k != "refresh"}
    found = compare_token_answers("POST /api/auth/token/refresh/", pair(), unrotated)
    assert [(m.aspect, m.api, m.baseline) for m in found] == [
        (
            "fields",
            "['access', 'expires_in', 'refresh', 'token_type'] (refresh only here)",
            "['access', 'expires_in', 'token_type']",
        )
    ]


PATCHED = {**PATIENT, "phone": "+1 555 0000001", "updated_at": "2026-12-03T10:00:00Z"}
SENT = {"phone": "+1 555 0000001"}


def test_patch_answers_alike_but_for_the_time_and_the_next_version_pass() -> None:
    api = Answer(200, {"etag": '"4"'}, PATCHED)
    baseline = Answer(200, {"etag": '"5"'}, {**PATCHED, "updated_at": "2026-12-03T10:00:01Z"})
    assert compare_patch_answers("PATCH", api, baseline, SENT) == []
    refused = Answer(400, {}, {"detail": "name"})
    assert compare_patch_answers("PATCH", refused, Answer(400, {}, None), {"name": None}) == []


@pytest.mark.parametrize(
    ("baseline", "sent", "aspect"),
    [
        (Answer(200, {"etag": '"5"'}, {**PATCHED, "age": 38}), SENT, "body.age"),
        (Answer(200, {"etag": '"5"'}, {**PATCHED, "age": "37"}), SENT, "body.age type"),
        (Answer(200, {"etag": '"5"'}, {"id": 1}), SENT, "body fields"),
        (Answer(200, {}, PATCHED), SENT, "header etag (the baseline's change is the next version)"),
        (
            Answer(200, {"etag": '"4"'}, PATCHED),
            SENT,
            "header etag (the baseline's change is the next version)",
        ),
        (
            Answer(200, {"etag": '"5"'}, PATCHED),
            {"phone": "+1 555 0000002"},
            "body.phone (as sent)",
        ),
        (Answer(404, {}, None), SENT, "status"),
    ],
)
def test_each_difference_in_a_patch_answer_is_named(
    baseline: Answer, sent: dict[str, Any], aspect: str
) -> None:
    api = Answer(200, {"etag": '"4"'}, PATCHED)
    assert [m.aspect for m in compare_patch_answers("PATCH", api, baseline, sent)] == [aspect]


MISMATCHED: list[tuple[str, Callable[[], list[Mismatch]], str]] = [
    (
        "read body",
        lambda: run_check(baseline=answers(patient=Answer(200, {}, {**PATIENT, "name": "Ada"}))),
        "GET /api/patients/1/ differs in body.name: api Ada Turing | baseline Ada",
    ),
    (
        "login claims",
        lambda: run_check(baseline_login=pair(user_id=None)),
        "POST /api/auth/login/ access token differs in claim names: "
        "api ['adm', 'exp', 'iat', 'iss', 'jti', 'sub', 'token_type', 'user_id'] (user_id only "
        "here) | baseline ['adm', 'exp', 'iat', 'iss', 'jti', 'sub', 'token_type']",
    ),
    (
        "refresh status",
        lambda: run_check(baseline=answers(refresh=Answer(401, {}, {"detail": "invalid"}))),
        "POST /api/auth/token/refresh/ differs in status: api 200",
    ),
    (
        "refresh claims",
        lambda: run_check(
            baseline=answers(
                refresh=Answer(200, {}, {**pair(), "refresh": token("refresh", sid=7)})
            )
        ),
        "POST /api/auth/token/refresh/ refresh token differs in claim sid type: api str | "
        "baseline int",
    ),
]


@pytest.mark.parametrize(
    ("check", "named"), [case[1:] for case in MISMATCHED], ids=[case[0] for case in MISMATCHED]
)
def test_a_mismatch_fails_the_run_and_is_named(
    check: Callable[[], list[Mismatch]], named: str
) -> None:
    mismatches = check()
    with pytest.raises(ParityMismatch) as raised:
        require_parity(mismatches)
    assert raised.value.code != 0  # SystemExit with a message: the process exits with 1
    assert raised.value.mismatches == tuple(mismatches)
    assert named in str(raised.value)
    assert str(raised.value).count("\n  - ") == len(mismatches) >= 1
