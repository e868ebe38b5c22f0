"""Domain errors. The HTTP adapter maps each class to one status code, in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One thing wrong with one input field."""

    field: str
    message: str


class DomainError(Exception):
    """Base of every error the core raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """The input breaks a rule; ``errors`` names each field and what is wrong with it."""

    def __init__(self, errors: list[FieldError] | tuple[FieldError, ...]) -> None:
        self.errors = tuple(errors)
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in self.errors))

    @classmethod
    def single(cls, field: str, message: str) -> InvalidInput:
        return cls([FieldError(field, message)])


class NotFound(DomainError):
    """The resource does not exist, or does not exist for this caller."""

    def __init__(self, resource: str, identifier: object) -> None:
        super().__init__(f"{resource} {identifier} was not found")
        self.resource = resource
        self.identifier = identifier


class Forbidden(DomainError):
    """The caller may see the resource but not change it."""


class Conflict(DomainError):
    """A uniqueness rule would be broken."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PreconditionFailed(DomainError):
    """The caller changes a record it read at a version that is no longer current."""

    def __init__(self, resource: str, identifier: object, current_version: int) -> None:
        super().__init__(
            f"{resource} {identifier} has changed since that version "
            f"(now version {current_version}); read it again"
        )
        self.current_version = current_version


class AuthenticationFailed(DomainError):
    """Bad credentials or a token that is not acceptable. Deliberately vague."""


# Said when a valid token names an account that is gone or deactivated.
ACCOUNT_GONE = "The account no longer exists or is inactive"


class TooManyAttempts(DomainError):
    """Throttled: the caller must wait ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many attempts; try again later")
        self.retry_after = max(1, retry_after)


class Unavailable(Exception):
    """A store the service needs cannot be reached now; the caller may try again later.

    Raised by adapters, not by a rule, hence not a DomainError: when a connection is lost at
    a commit, nobody knows whether the change was kept, so the audit records it as an error.
    ``store`` names what cannot be reached, in words a client may read.
    """

    def __init__(self, message: str, retry_after: int = 5, *, store: str = "database") -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.store = store
