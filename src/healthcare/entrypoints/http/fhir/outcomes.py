"""Errors on the FHIR routes: OperationOutcome resources with the right HTTP status.

The core's errors (healthcare.domain.errors) get the same statuses as on the REST routes
(problems.py); what only FHIR has is raised as ``FhirProblem``: an invalid resource (400,
with the FHIRPath of each bad element), a version named in the body that is not current
(409), and a valid resource that our records cannot hold (422).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from healthcare.domain.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    TooManyAttempts,
    Unavailable,
)
from healthcare.entrypoints.http.fhir.resources import FHIR_JSON, Issue, OperationOutcome
from healthcare.entrypoints.http.problems import DOMAIN_STATUS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IssueAt:
    """One thing wrong, and where: a FHIRPath expression (None: the request as a whole)."""

    message: str
    expression: str | None = None


class FhirProblem(Exception):
    """A request the FHIR adapter refuses before (or instead of) the core."""

    def __init__(self, status: int, code: str, issues: list[IssueAt]) -> None:
        super().__init__("; ".join(issue.message for issue in issues))
        self.status = status
        self.code = code
        self.issues = issues

    @classmethod
    def invalid(cls, issues: list[IssueAt]) -> FhirProblem:
        return cls(400, "invalid", issues)

    @classmethod
    def one(
        cls, status: int, code: str, message: str, expression: str | None = None
    ) -> FhirProblem:
        return cls(status, code, [IssueAt(message, expression)])


# Each domain error's OperationOutcome issue code; its status is the REST routes' own
# (problems.DOMAIN_STATUS). tests/unit/test_errors.py holds every DomainError to a row.
ISSUE_CODE: dict[type[DomainError], str] = {
    InvalidInput: "invalid",
    AuthenticationFailed: "login",
    Forbidden: "forbidden",
    NotFound: "not-found",
    Conflict: "conflict",
    PreconditionFailed: "conflict",
    TooManyAttempts: "throttled",
}


def outcome(issues: list[IssueAt], code: str, severity: str = "error") -> OperationOutcome:
    return OperationOutcome(
        [
            Issue(
                severity,
                code,
                issue.message,
                [issue.expression] if issue.expression is not None else None,
            )
            for issue in issues
        ]
    )


def outcome_response(
    status: int,
    code: str,
    issues: list[IssueAt],
    headers: Mapping[str, str] | None = None,
) -> Response[OperationOutcome]:
    return Response(
        outcome(issues, code), status_code=status, media_type=FHIR_JSON, headers=headers
    )


def fhir_problem_to_response(
    request: Request[Any, Any, Any], exc: FhirProblem
) -> Response[OperationOutcome]:
    return outcome_response(exc.status, exc.code, exc.issues)


def domain_error_to_outcome(
    request: Request[Any, Any, Any], exc: DomainError
) -> Response[OperationOutcome]:
    kind = next((cls for cls in ISSUE_CODE if isinstance(exc, cls)), InvalidInput)
    status, code = DOMAIN_STATUS[kind][0], ISSUE_CODE[kind]
    headers: dict[str, str] | None = None
    if isinstance(exc, InvalidInput):
        # Outside a resource's body (a search or a header): the name the client gave.
        issues = [IssueAt(f"{e.field}: {e.message}", e.field) for e in exc.errors]
        return outcome_response(400, code, issues)
    if isinstance(exc, AuthenticationFailed):
        headers = {"WWW-Authenticate": 'Bearer realm="api"'}
    if isinstance(exc, TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return outcome_response(status, code, [IssueAt(exc.message)], headers)


def http_error_to_outcome(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[OperationOutcome]:
    if exc.status_code >= 500:
        return internal_error_to_outcome(request, exc)
    code = "invalid" if isinstance(exc, ValidationException) else "processing"
    if exc.status_code == 404:
        code = "not-found"
    return outcome_response(
        exc.status_code, code, [IssueAt(str(exc.detail))], dict(exc.headers or {})
    )


def undecodable_to_outcome(
    request: Request[Any, Any, Any], exc: UnicodeDecodeError | RecursionError
) -> Response[OperationOutcome]:
    return outcome_response(400, "structure", [IssueAt("The request could not be decoded")])


def unavailable_to_outcome(
    request: Request[Any, Any, Any], exc: Unavailable
) -> Response[OperationOutcome]:
    log.warning("Unavailable on %s %s: %s", request.method, request.url.path, exc.message)
    issue = IssueAt("The service cannot reach its database right now; try again shortly")
    return outcome_response(503, "transient", [issue], {"Retry-After": str(exc.retry_after)})


def internal_error_to_outcome(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[OperationOutcome]:
    log.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    issue = IssueAt("The server could not complete the request")
    return outcome_response(500, "exception", [issue])


# Every class the app's own table names (problems.EXCEPTION_HANDLERS) is named here too:
# Litestar picks the handler of the most specific class across the layers.
FHIR_EXCEPTION_HANDLERS: Mapping[Any, Any] = {
    FhirProblem: fhir_problem_to_response,
    DomainError: domain_error_to_outcome,
    ValidationException: http_error_to_outcome,
    HTTPException: http_error_to_outcome,
    UnicodeDecodeError: undecodable_to_outcome,
    RecursionError: undecodable_to_outcome,
    Unavailable: unavailable_to_outcome,
    Exception: internal_error_to_outcome,
}
