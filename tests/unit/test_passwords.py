"""The bcrypt adapter, with the cheapest cost factor bcrypt allows."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import bcrypt
import pytest

from healthcare.adapters.security.passwords import (
    LOWEST_PRIORITY,
    BcryptPasswordHasher,
    FairShare,
)


@pytest.fixture(scope="module")
def hasher() -> BcryptPasswordHasher:
    return BcryptPasswordHasher(rounds=4)


async def test_hash_is_a_bcrypt_hash_with_the_given_cost(hasher: BcryptPasswordHasher) -> None:
    hashed = await hasher.hash("correct horse")

    assert hashed.startswith("$2b$04$")
    assert len(hashed) == 60
    assert "correct horse" not in hashed


async def test_each_hash_is_salted(hasher: BcryptPasswordHasher) -> None:
    assert await hasher.hash("same password") != await hasher.hash("same password")


async def test_verify_right_and_wrong(hasher: BcryptPasswordHasher) -> None:
    hashed = await hasher.hash("correct horse")

    assert await hasher.verify("correct horse", hashed) is True
    assert await hasher.verify("correct horsE", hashed) is False
    assert await hasher.verify("", hashed) is False


async def test_non_ascii_password(hasher: BcryptPasswordHasher) -> None:
    hashed = await hasher.hash("\u00e9" * 36)  # 72 bytes, the most we accept

    assert await hasher.verify("\u00e9" * 36, hashed) is True
    assert await hasher.verify("e" * 36, hashed) is False


async def test_hash_from_another_bcrypt_cost_verifies(hasher: BcryptPasswordHasher) -> None:
    hashed = bcrypt.hashpw(b"legacy password", bcrypt.gensalt(5)).decode()

    assert await hasher.verify("legacy password", hashed) is True


@pytest.mark.parametrize(
    "stored",
    ["", "not-a-hash", "$2b$04$short", "pbkdf2_sha256$720000$salt$hash", "$2b$04$" + "\u00e9" * 53],
)
async def test_malformed_stored_hash_is_a_failed_check(
    hasher: BcryptPasswordHasher, stored: str
) -> None:
    assert await hasher.verify("correct horse", stored) is False


async def test_over_long_password_never_raises(hasher: BcryptPasswordHasher) -> None:
    hashed = await hasher.hash("x" * 72)

    # bcrypt 5 raises on more than 72 bytes; the adapter must not.
    assert await hasher.verify("y" * 100, hashed) is False
    await hasher.waste_time("z" * 200)


async def test_waste_time_runs_a_real_check(
    hasher: BcryptPasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real_checkpw = bcrypt.checkpw

    def counting_checkpw(password: bytes, hashed: bytes, *args: Any) -> bool:
        calls.append((password, hashed))
        return real_checkpw(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting_checkpw)  # the module passwords uses

    await hasher.waste_time("guess")

    assert len(calls) == 1
    password, decoy = calls[0]
    assert password == b"guess"
    assert decoy.startswith(b"$2b$04$")  # as slow as a real hash of this hasher


async def test_hashes_run_on_threads_at_the_lowest_cpu_priority(
    hasher: BcryptPasswordHasher,
) -> None:
    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    before = priority()
    assert await hasher._run(None, priority) == LOWEST_PRIORITY
    assert priority() == before  # the event loop's thread keeps its own
    assert await hasher.verify("a password", await hasher.hash("a password"))


async def test_one_partys_storm_does_not_queue_anothers_sign_in_behind_it() -> None:
    """A storm of password checks for one account (24 in flight on one thread) and a
    sign-in for another: the sign-in waits for at most one of the storm's hashes, not for
    all of them."""
    hasher = BcryptPasswordHasher(rounds=4, threads=1)
    stored = await hasher.hash("the right one")
    finished: list[str] = []

    async def check(party: str) -> None:
        await hasher.verify("a wrong guess", stored, on_behalf_of=party)
        finished.append(party)

    try:
        storm = [asyncio.create_task(check("account:1")) for _ in range(24)]
        await asyncio.sleep(0)  # the storm is queued first
        await asyncio.gather(check("account:2"), *storm)
    finally:
        hasher.close()

    assert finished.index("account:2") <= 2, finished


async def test_the_fair_share_hands_places_out_in_turn() -> None:
    share = FairShare(1)
    order: list[str] = []

    async def job(party: str) -> None:
        await share.take(party)
        try:
            order.append(party)
            await asyncio.sleep(0)
        finally:
            share.give_back()

    await asyncio.gather(*(job("a") for _ in range(3)), *(job("b") for _ in range(2)), job("c"))

    assert order == ["a", "a", "b", "c", "a", "b"]
    assert share.waiting == 0
