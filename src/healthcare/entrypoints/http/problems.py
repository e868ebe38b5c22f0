"""The one place where errors become HTTP responses: RFC 9457 problem details."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import msgspec
import psycopg
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from sqlalchemy.exc import IntegrityError

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
from healthcare.entrypoints.http.bodies import RequestBodyDTO
from healthcare.entrypoints.http.body_deadline import ClientDisconnected

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
CLIENT_CLOSED_REQUEST = 499
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


class FieldProblem(msgspec.Struct, frozen=True):
    field: str
    message: str


class ProblemDetails(msgspec.Struct, frozen=True, omit_defaults=True):
    """RFC 9457 problem details; ``errors`` lists each bad field of a bad request."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldProblem] | None = None


# Each domain error's status and problem type. Its audit outcome is in application/audit.py;
# tests/unit/test_errors.py holds every DomainError to a row in both.
DOMAIN_STATUS: dict[type[DomainError], tuple[int, str]] = {
    InvalidInput: (400, "invalid-input"),
    AuthenticationFailed: (401, "authentication-failed"),
    Forbidden: (403, "forbidden"),
    NotFound: (404, "not-found"),
    Conflict: (409, "conflict"),
    PreconditionFailed: (412, "precondition-failed"),
    TooManyAttempts: (429, "too-many-attempts"),
}


def problem(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    errors: list[FieldProblem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response[ProblemDetails]:
    body = ProblemDetails(
        type=f"urn:healthcare:problem:{kind}" if kind else "about:blank",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def domain_error_to_response(
    request: Request[Any, Any, Any], exc: DomainError
) -> Response[ProblemDetails]:
    status, kind = next(
        (value for cls, value in DOMAIN_STATUS.items() if isinstance(exc, cls)),
        (400, "invalid-input"),  # unreachable while the tests hold the table complete
    )
    errors: list[FieldProblem] | None = None
    headers: dict[str, str] | None = None
    if isinstance(exc, InvalidInput):
        errors = [FieldProblem(e.field, e.message) for e in exc.errors]
        return problem(request, 400, "The request has invalid fields", kind=kind, errors=errors)
    if isinstance(exc, Conflict) and exc.field:
        errors = [FieldProblem(exc.field, exc.message)]
    if isinstance(exc, AuthenticationFailed):
        headers = {"WWW-Authenticate": 'Bearer realm="api"'}
    if isinstance(exc, TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return problem(request, status, exc.message, kind=kind, errors=errors, headers=headers)


def validation_error_to_response(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[ProblemDetails]:
    items = [item for item in exc.extra or [] if isinstance(item, dict)]
    if any(item.get("key") == "data" for item in items):  # no body at all
        missing = RequestBodyDTO.missing_body(request.route_handler.handler_id)
        return domain_error_to_response(request, missing)
    errors = [_field_problem(item) for item in items]
    detail = "The request has invalid fields" if errors else str(exc.detail)
    return problem(request, 400, detail, kind="invalid-input", errors=errors or None)


def http_error_to_response(
    request: Request[Any, Any, Any], exc: HTTPException
) -> Response[ProblemDetails]:
    status = exc.status_code
    if status >= 500:
        return internal_error_to_response(request, exc)
    detail = exc.detail if exc.detail and exc.detail != HTTPStatus(status).phrase else ""
    if status == 400 and detail.startswith("JSON is malformed"):
        detail = "The request body is not valid JSON"
    headers = dict(exc.headers or {})
    return problem(request, status, detail or HTTPStatus(status).phrase, headers=headers)


def undecodable_body_to_response(
    request: Request[Any, Any, Any], exc: UnicodeDecodeError | RecursionError
) -> Response[ProblemDetails]:
    # Raised while decoding a client's body: bytes that are not UTF-8, or nesting deeper
    # than the decoder's stack. The client's fault, so a 400 rather than a 500.
    detail = (
        "The request body is nested too deeply"
        if isinstance(exc, RecursionError)
        else "The request body is not valid UTF-8 JSON"
    )
    return problem(request, 400, detail, kind="invalid-input")


def unavailable_to_response(
    request: Request[Any, Any, Any], exc: Unavailable
) -> Response[ProblemDetails]:
    log.warning("Unavailable on %s %s: %s", request.method, request.url.path, exc.message)
    detail = f"The service cannot reach its {exc.store} right now; try again shortly"
    headers = {"Retry-After": str(exc.retry_after)}
    return problem(request, 503, detail, kind="unavailable", headers=headers)


def client_disconnected_to_response(
    request: Request[Any, Any, Any], exc: ClientDisconnected
) -> Response[None]:
    # Nothing went wrong here, and nobody is left to answer: a line for the curious, and
    # 499 (nginx's "client closed request") for the access log.
    log.info(
        "Client disconnected before its request body arrived: %s %s",
        request.method,
        request.url.path,
    )
    return Response(None, status_code=CLIENT_CLOSED_REQUEST)


def integrity_error_to_response(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[ProblemDetails]:
    # The repositories turn the violations they expect into domain errors; one that gets
    # here lost a race the code did not foresee (a row gone, or taken, between two
    # statements). The request clashed with the data, so a 409: trying again may succeed.
    # Logged, without the statement's text, so that it gets its own handling.
    log.warning(
        "Unexpected constraint violation on %s %s: %s",
        request.method,
        request.url.path,
        type(getattr(exc, "orig", None) or exc).__name__,
    )
    detail = "The request conflicts with the current state of the data; read it and try again"
    return problem(request, 409, detail, kind="conflict")


def internal_error_to_response(
    request: Request[Any, Any, Any], exc: Exception
) -> Response[ProblemDetails]:
    # Log the cause for us; tell the client nothing about our internals.
    log.error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(request, 500, "The server could not complete the request")


def _field_problem(item: dict[str, Any]) -> FieldProblem:
    message = str(item.get("message", "is invalid"))
    field = str(item.get("key") or "body")
    if unknown := _UNKNOWN_FIELD.search(message):
        return FieldProblem(unknown.group(1), "is not a known field")
    if missing := _MISSING_FIELD.search(message):
        return FieldProblem(missing.group(1), "is required")
    if field == "data":
        field = "body"
    return FieldProblem(field, message)


EXCEPTION_HANDLERS: Mapping[Any, Any] = {
    DomainError: domain_error_to_response,
    ValidationException: validation_error_to_response,
    HTTPException: http_error_to_response,
    UnicodeDecodeError: undecodable_body_to_response,
    RecursionError: undecodable_body_to_response,
    Unavailable: unavailable_to_response,
    ClientDisconnected: client_disconnected_to_response,
    # SQLAlchemy's, and the drivers' own should one ever escape without SQLAlchemy's wrapper.
    IntegrityError: integrity_error_to_response,
    psycopg.IntegrityError: integrity_error_to_response,
    sqlite3.IntegrityError: integrity_error_to_response,
    Exception: internal_error_to_response,
}
