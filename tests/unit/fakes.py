"""Test doubles for the ports the in-memory adapter does not cover: hasher and clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

HASH_PREFIX = "hashed:"


class FakePasswordHasher:
    """Instant and reversible, and it remembers every call so tests can assert on them."""

    def __init__(self) -> None:
        self.hashed: list[str] = []
        self.verified: list[str] = []
        self.wasted: list[str] = []
        self.parties: list[str | None] = []  # on whose behalf each call was made

    async def hash(self, password: str, *, on_behalf_of: str | None = None) -> str:
        self.hashed.append(password)
        self.parties.append(on_behalf_of)
        return HASH_PREFIX + password

    async def verify(
        self, password: str, password_hash: str, *, on_behalf_of: str | None = None
    ) -> bool:
        self.verified.append(password)
        self.parties.append(on_behalf_of)
        return password_hash == HASH_PREFIX + password

    async def waste_time(self, password: str, *, on_behalf_of: str | None = None) -> None:
        self.wasted.append(password)
        self.parties.append(on_behalf_of)


class FixedClock:
    """A clock that stands still until told to move.

    It starts at the real time (whole seconds): pyjwt checks ``exp`` and ``iat`` against the
    system clock, not against ours, so a clock far from now would make every token invalid.
    """

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at if at is not None else datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta
