"""The LoginThrottle port over expiring counters."""

from __future__ import annotations

import hashlib

from healthcare.adapters.throttling.counters import Counters
from healthcare.domain.errors import TooManyAttempts


class CountingLoginThrottle:
    """A handful of attempts per account and of failures per address, per window.

    The way out of a targeted lockout: once an account's attempts are spent, a client
    that has not failed a sign-in within the window still gets one try at it (one per
    client and window, counted atomically, so a parallel burst from a fresh address is
    one try, not many). An attacker who locks an account out thus locks out only the
    addresses that failed, not its owner signing in from elsewhere; in exchange, every
    address that has never failed can make one guess per window at a locked account,
    which the per-address limit then stops.
    """

    def __init__(
        self,
        counters: Counters,
        *,
        max_attempts_per_username: int = 5,
        max_failures_per_client: int = 20,
        window_seconds: int = 300,
    ) -> None:
        self._counters = counters
        self._per_account = max_attempts_per_username
        self._per_client = max_failures_per_client
        self._window = window_seconds

    async def admit(self, account: str, client: str) -> None:
        failures, resets_in = await self._counters.peek(_client_key(client))
        if failures >= self._per_client:
            raise TooManyAttempts(resets_in)
        attempts, resets_in = await self._counters.increment(_account_key(account), self._window)
        if attempts <= self._per_account:
            return
        if failures == 0:
            tries, _ = await self._counters.increment(_clean_try_key(client), self._window)
            if tries == 1:
                return
        raise TooManyAttempts(resets_in)

    async def failed(self, client: str) -> None:
        await self._counters.increment(_client_key(client), self._window)

    async def succeeded(self, account: str) -> None:
        await self._counters.reset(_account_key(account))


def _account_key(account: str) -> str:
    # Hashed: the counter store need not hold usernames (or mistyped passwords in them).
    return "login:user:" + hashlib.sha256(account.encode()).hexdigest()[:32]


def _client_key(client: str) -> str:
    return "login:client:" + client


def _clean_try_key(client: str) -> str:
    return "login:clean-try:" + client
