"""Domain errors carry what the HTTP adapter needs to build a problem document."""

from __future__ import annotations

from healthcare.domain.errors import (
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
)


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


def test_every_error_is_a_domain_error() -> None:
    for error in (InvalidInput([]), NotFound("Doctor", 1), Forbidden("no"), Conflict("dup")):
        assert isinstance(error, DomainError)
        assert isinstance(error.message, str)
