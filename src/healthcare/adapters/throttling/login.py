"""The LoginThrottle port over expiring counters."""

from __future__ import annotations

import hashlib

from healthcare.adapters.throttling.counters import Counters
from healthcare.domain.errors import TooManyAttempts


class CountingLoginThrottle:
    """A handful of attempts per username and of failures per address, per window."""

    def __init__(
        self,
        counters: Counters,
        *,
        max_attempts_per_username: int = 5,
        max_failures_per_client: int = 20,
        window_seconds: int = 300,
    ) -> None:
        self._counters = counters
        self._per_username = max_attempts_per_username
        self._per_client = max_failures_per_client
        self._window = window_seconds

    async def admit(self, username: str, client: str) -> None:
        failures, resets_in = await self._counters.peek(_client_key(client))
        if failures >= self._per_client:
            raise TooManyAttempts(resets_in)
        attempts, resets_in = await self._counters.increment(_username_key(username), self._window)
        if attempts > self._per_username:
            raise TooManyAttempts(resets_in)

    async def failed(self, client: str) -> None:
        await self._counters.increment(_client_key(client), self._window)

    async def succeeded(self, username: str) -> None:
        await self._counters.reset(_username_key(username))


def _username_key(username: str) -> str:
    # Hashed: the counter store need not hold usernames (or mistyped passwords in them).
    return "login:user:" + hashlib.sha256(username.encode()).hexdigest()[:32]


def _client_key(client: str) -> str:
    return "login:client:" + client
