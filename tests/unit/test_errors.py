"""Domain errors carry what the HTTP adapter needs to build a problem document."""

from __future__ import annotations

from healthcare.application.audit import OUTCOMES, outcome_of
from healthcare.domain.audit import AuditOutcome
from healthcare.domain.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    TooManyAttempts,
)
from healthcare.entrypoints.http.fhir.outcomes import ISSUE_CODE
from healthcare.entrypoints.http.problems import DOMAIN_STATUS


def test_invalid_input_lists_every_field_in_its_message() -> None:
    error = InvalidInput([FieldError("name", "must not be blank"), FieldError("age", "too old")])

    assert error.errors == (FieldError("name", "must not be blank"), FieldError("age", "too old"))
    assert error.message == "name: must not be blank; age: too old"
    assert str(error) == error.message


def test_invalid_input_single() -> None:
    error = InvalidInput.single("gender", "must be one of Male, Female")

    assert error.errors == (FieldError("gender", "must be one of Male, Female"),)


def test_not_found_names_the_resource() -> None:
    error = NotFound("Patient", 17)

    assert (error.resource, error.identifier, error.message) == (
        "Patient",
        17,
        "Patient 17 was not found",
    )


def test_conflict_field_is_optional() -> None:
    assert Conflict("taken", "email").field == "email"
    assert Conflict("taken").field is None


def _domain_errors() -> set[type[DomainError]]:
    """Every subclass of DomainError, at any depth."""
    found: set[type[DomainError]] = set()
    todo = list(DomainError.__subclasses__())
    while todo:
        kind = todo.pop()
        found.add(kind)
        todo.extend(kind.__subclasses__())
    return found


def test_there_are_domain_errors_to_check() -> None:
    assert _domain_errors() >= {
        InvalidInput,
        NotFound,
        Forbidden,
        Conflict,
        AuthenticationFailed,
        TooManyAttempts,
    }


def test_every_domain_error_has_an_http_status_and_an_audit_outcome() -> None:
    """A new domain error must be given both: a status and problem type
    (entrypoints/http/problems.py) and an audit outcome (application/audit.py)."""
    errors = _domain_errors()

    assert errors - set(DOMAIN_STATUS) == set(), "no HTTP status"
    assert errors - set(ISSUE_CODE) == set(), "no FHIR OperationOutcome issue code"
    assert errors - {kind for kind, _ in OUTCOMES} == set(), "no audit outcome"
    assert set(DOMAIN_STATUS) <= errors and {kind for kind, _ in OUTCOMES} <= errors


def test_each_error_maps_to_its_own_status_and_outcome() -> None:
    statuses = {status for status, _ in DOMAIN_STATUS.values()}
    outcomes = [outcome for _, outcome in OUTCOMES]

    assert len(statuses) == len(DOMAIN_STATUS)
    assert len(set(outcomes)) == len(outcomes)
    assert AuditOutcome.ERROR not in outcomes  # kept for what no rule raised
    for kind in _domain_errors():
        assert outcome_of(_instance(kind)) is dict(OUTCOMES)[kind]


def _instance(kind: type[DomainError]) -> DomainError:
    examples: dict[type[DomainError], DomainError] = {
        InvalidInput: InvalidInput.single("name", "is required"),
        NotFound: NotFound("Patient", 1),
        Conflict: Conflict("taken", "username"),
        TooManyAttempts: TooManyAttempts(3),
        PreconditionFailed: PreconditionFailed("Patient", 1, 2),
    }
    return examples.get(kind) or kind("message")
