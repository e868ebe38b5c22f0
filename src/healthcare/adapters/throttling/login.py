"""The LoginThrottle port over expiring counters."""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import Awaitable, Callable
from typing import NoReturn

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

    A refused attempt is answered only after ``refusal_delay_seconds`` (a sleep of the
    refused request alone: it holds no connection, lock or thread meanwhile). A 429 costs
    far less than a hash, so a client hammering a locked account, or from a locked address,
    would otherwise get thousands a second and spend the cores on them; delayed, a client
    that waits for its answers (as one on C connections does) gets at most C a second for
    each second of delay. Admitted attempts, the clean client's try among them, never wait.
    """

    def __init__(
        self,
        counters: Counters,
        *,
        max_attempts_per_username: int = 5,
        max_failures_per_client: int = 20,
        window_seconds: int = 300,
        refusal_delay_seconds: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._counters = counters
        self._per_account = max_attempts_per_username
        self._per_client = max_failures_per_client
        self._window = window_seconds
        self._refusal_delay = refusal_delay_seconds
        self._sleep = sleep

    async def admit(self, account: str, client: str) -> None:
        refused_for = await self._count(account, client)
        if refused_for is not None:
            await self._refuse(refused_for)

    async def _count(self, account: str, client: str) -> int | None:
        """Count the attempt: None if admitted, else the seconds until the limit that
        refuses it resets."""
        failures, resets_in = await self._counters.peek(_client_key(client))
        if failures >= self._per_client:
            return resets_in
        attempts, resets_in = await self._counters.increment(_account_key(account), self._window)
        if attempts <= self._per_account:
            return None
        if failures == 0:
            tries, _ = await self._counters.increment(_clean_try_key(client), self._window)
            if tries == 1:
                return None
        return resets_in

    async def _refuse(self, resets_in: int) -> NoReturn:
        """Raise TooManyAttempts after the refusal delay. Its Retry-After counts from the
        answer: the delay is taken off the wait (rounded up, so never too early to retry).

        A client that gives up during the delay cancels the sleep, and its request ends
        there, as any cancelled request does: nothing was taken that must be given back.
        """
        if self._refusal_delay > 0:
            await self._sleep(self._refusal_delay)
        raise TooManyAttempts(math.ceil(resets_in - self._refusal_delay))

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
