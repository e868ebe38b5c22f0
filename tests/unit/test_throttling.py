"""Brute-force brakes on sign-in."""

from __future__ import annotations

import asyncio

import pytest

from healthcare.adapters.persistence.memory import MemoryUnitOfWork
from healthcare.adapters.throttling.counters import MemoryCounters
from healthcare.adapters.throttling.login import CountingLoginThrottle
from healthcare.application.auth import Login
from healthcare.domain.audit import Origin
from healthcare.domain.errors import AuthenticationFailed, TooManyAttempts
from tests.unit.factories import Core
from tests.unit.fakes import FakePasswordHasher


async def test_memory_counters_count_within_a_window() -> None:
    counters = MemoryCounters()
    assert await counters.increment("k", 60) == (1, 60)
    assert (await counters.increment("k", 60))[0] == 2
    assert (await counters.peek("k"))[0] == 2
    await counters.reset("k")
    assert await counters.peek("k") == (0, 0)


async def test_memory_counters_stay_bounded() -> None:
    counters = MemoryCounters(max_keys=10)
    for i in range(50):
        await counters.increment(f"k{i}", 60)
    assert len(counters._counts) <= 10


async def test_a_handful_of_attempts_per_account_then_429() -> None:
    throttle = CountingLoginThrottle(MemoryCounters(), max_attempts_per_username=3)
    for _ in range(3):
        await throttle.admit("ann", "10.0.0.1")
    await throttle.failed("10.0.0.1")
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.admit("ann", "10.0.0.1")
    assert 0 < caught.value.retry_after <= 300
    await throttle.admit("bob", "10.0.0.1")  # other accounts are unaffected


async def test_success_resets_the_username_but_not_the_address() -> None:
    throttle = CountingLoginThrottle(
        MemoryCounters(), max_attempts_per_username=2, max_failures_per_client=3
    )
    await throttle.admit("ann", "10.0.0.1")
    await throttle.succeeded("ann")
    await throttle.admit("ann", "10.0.0.1")
    await throttle.admit("ann", "10.0.0.1")  # two more after the reset are fine
    for _ in range(3):
        await throttle.failed("10.0.0.9")
    with pytest.raises(TooManyAttempts):
        await throttle.admit("carol", "10.0.0.9")


async def test_login_is_throttled_even_with_the_right_password(core: Core) -> None:
    user, password = await core.sign_up()
    login = Login(
        MemoryUnitOfWork(core.store),
        core.hasher,
        core.tokens,
        core.clock,
        throttle=CountingLoginThrottle(MemoryCounters(), max_attempts_per_username=3),
        auditor=core.auditor,
    )
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await login(user.username.upper(), "wrong password!", Origin("10.0.0.1"))
    with pytest.raises(TooManyAttempts):
        await login(user.username, password, Origin("10.0.0.1"))
    assert len(core.hasher.verified) == 3  # a throttled attempt costs no bcrypt


async def test_a_successful_login_resets_the_count(core: Core) -> None:
    user, password = await core.sign_up()
    login = Login(
        MemoryUnitOfWork(core.store),
        core.hasher,
        core.tokens,
        core.clock,
        throttle=CountingLoginThrottle(MemoryCounters(), max_attempts_per_username=3),
        auditor=core.auditor,
    )
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await login(user.username, "wrong password!", Origin("10.0.0.1"))
    await login(user.username, password, Origin("10.0.0.1"))
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await login(user.username, "wrong password!", Origin("10.0.0.1"))
    await login(user.username, password, Origin("10.0.0.1"))


class SlowHasher(FakePasswordHasher):
    """Takes a while, as bcrypt does: parallel attempts are all in flight at once."""

    async def verify(
        self, password: str, password_hash: str, *, on_behalf_of: str | None = None
    ) -> bool:
        await asyncio.sleep(0.01)
        return await super().verify(password, password_hash, on_behalf_of=on_behalf_of)


def _login(core: Core, attempts: int = 3, hasher: FakePasswordHasher | None = None) -> Login:
    return Login(
        MemoryUnitOfWork(core.store),
        hasher or core.hasher,
        core.tokens,
        core.clock,
        throttle=CountingLoginThrottle(MemoryCounters(), max_attempts_per_username=attempts),
        auditor=core.auditor,
    )


async def test_the_username_and_the_email_of_an_account_share_one_count(core: Core) -> None:
    user, password = await core.sign_up()
    login = _login(core)
    for name in (user.username, user.username, user.email.upper()):
        with pytest.raises(AuthenticationFailed):
            await login(name, "wrong password!", Origin("10.0.0.1"))

    with pytest.raises(TooManyAttempts):
        await login(user.email, password, Origin("10.0.0.1"))


async def test_unknown_names_are_counted_by_the_name_typed(core: Core) -> None:
    login = _login(core)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await login("nobody", "wrong password!", Origin("10.0.0.1"))
    with pytest.raises(TooManyAttempts):
        await login("NOBODY", "wrong password!", Origin("10.0.0.1"))
    with pytest.raises(AuthenticationFailed):
        await login("somebody", "wrong password!", Origin("10.0.0.1"))


async def test_a_clean_client_with_the_right_password_gets_through_a_locked_account(
    core: Core,
) -> None:
    """The way out of a targeted lockout: an attacker who spends an account's attempts
    locks out only clients that have failed recently, not its owner elsewhere."""
    user, password = await core.sign_up()
    login = _login(core)
    attacker, owner, stranger = Origin("10.6.6.6"), Origin("10.0.0.1"), Origin("10.0.0.2")
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await login(user.username, "wrong password!", attacker)
    with pytest.raises(TooManyAttempts):
        await login(user.username, password, attacker)

    # A clean client gets one try at a locked account: a wrong one marks it.
    with pytest.raises(AuthenticationFailed):
        await login(user.username, "wrong password!", stranger)
    with pytest.raises(TooManyAttempts):
        await login(user.username, password, stranger)

    assert await login(user.username, password, owner)  # never failed: let through


async def test_a_burst_from_a_clean_client_gets_one_try_at_a_locked_account(core: Core) -> None:
    user, _ = await core.sign_up()
    hasher = SlowHasher()
    login = _login(core, hasher=hasher)
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            await login(user.username, "wrong password!", Origin("10.6.6.6"))
    verified = len(hasher.verified)

    burst = await asyncio.gather(
        *(login(user.username, f"guess number {n}", Origin("10.0.0.7")) for n in range(6)),
        return_exceptions=True,
    )

    assert sorted(type(answer).__name__ for answer in burst) == [
        "AuthenticationFailed",
        *["TooManyAttempts"] * 5,
    ]
    assert len(hasher.verified) == verified + 1


class Sleeps:
    """A fake asyncio.sleep that returns at once and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)


async def test_a_refused_attempt_is_answered_after_the_refusal_delay() -> None:
    sleeps = Sleeps()
    throttle = CountingLoginThrottle(
        MemoryCounters(), max_attempts_per_username=2, refusal_delay_seconds=1.5, sleep=sleeps
    )
    for _ in range(2):
        await throttle.admit("ann", "10.0.0.1")
        await throttle.failed("10.0.0.1")
    assert sleeps.waited == []  # admitted attempts are answered at once

    with pytest.raises(TooManyAttempts) as caught:
        await throttle.admit("ann", "10.0.0.1")
    assert sleeps.waited == [1.5]
    # Retry-After counts from the answer, after the delay: 300 s less 1.5, rounded up.
    assert caught.value.retry_after == 299


async def test_a_refusal_delay_past_the_window_still_asks_for_a_wait() -> None:
    # The window ends during the delay: what is left of it is below zero, and a Retry-After
    # of 0 or less would invite a retry at once (or not parse at all).
    throttle = CountingLoginThrottle(
        MemoryCounters(),
        max_attempts_per_username=1,
        window_seconds=1,
        refusal_delay_seconds=2.5,
        sleep=Sleeps(),
    )
    await throttle.admit("ann", "10.0.0.1")
    await throttle.failed("10.0.0.1")
    with pytest.raises(TooManyAttempts) as caught:
        await throttle.admit("ann", "10.0.0.1")
    assert caught.value.retry_after == 1


async def test_an_address_past_its_failures_waits_for_its_refusal_too() -> None:
    sleeps = Sleeps()
    throttle = CountingLoginThrottle(
        MemoryCounters(), max_failures_per_client=2, refusal_delay_seconds=0.5, sleep=sleeps
    )
    for _ in range(2):
        await throttle.failed("10.6.6.6")
    with pytest.raises(TooManyAttempts):
        await throttle.admit("someone", "10.6.6.6")
    assert sleeps.waited == [0.5]
    await throttle.admit("someone", "10.0.0.1")  # another address: at once
    assert sleeps.waited == [0.5]


async def test_the_clean_clients_try_at_a_locked_account_is_not_delayed() -> None:
    sleeps = Sleeps()
    throttle = CountingLoginThrottle(
        MemoryCounters(), max_attempts_per_username=1, refusal_delay_seconds=1.0, sleep=sleeps
    )
    await throttle.admit("ann", "10.6.6.6")
    await throttle.failed("10.6.6.6")
    with pytest.raises(TooManyAttempts):
        await throttle.admit("ann", "10.6.6.6")
    assert sleeps.waited == [1.0]

    await throttle.admit("ann", "10.0.0.1")  # the way out: admitted, at once
    assert sleeps.waited == [1.0]
    with pytest.raises(TooManyAttempts):  # its second try is refused, late
        await throttle.admit("ann", "10.0.0.1")
    assert sleeps.waited == [1.0, 1.0]


async def test_a_client_that_leaves_during_the_refusal_delay_is_just_cancelled() -> None:
    throttle = CountingLoginThrottle(
        MemoryCounters(), max_failures_per_client=1, refusal_delay_seconds=60.0
    )
    await throttle.failed("10.6.6.6")
    refused = asyncio.create_task(throttle.admit("ann", "10.6.6.6"))
    await asyncio.sleep(0.01)
    assert not refused.done()  # waiting out the delay
    refused.cancel()
    with pytest.raises(asyncio.CancelledError):
        await refused
    assert refused.cancelled()
