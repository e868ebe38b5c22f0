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
    sign-in for another: the sign-in waits for the storm's hash in progress, and no more."""
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

    assert finished.index("account:2") <= 1, finished


async def _job(share: FairShare, party: str, order: list[str]) -> None:
    await share.take(party)
    try:
        order.append(party)
        await asyncio.sleep(0)
    finally:
        share.give_back(party)


async def test_a_newcomer_goes_before_a_party_that_has_had_its_turn() -> None:
    """One party holds the only place and has more waiting; a party that has had no turn
    arrives: it is next (it waits for the place in use, not for the first party's next)."""
    share = FairShare(1)
    order: list[str] = []
    await share.take("storm")  # the storm's hash in progress
    storm = [asyncio.create_task(_job(share, "storm", order)) for _ in range(3)]
    await asyncio.sleep(0)
    sign_in = asyncio.create_task(_job(share, "sign-in", order))
    await asyncio.sleep(0)
    share.give_back("storm")
    await asyncio.gather(sign_in, *storm)

    assert order == ["sign-in", "storm", "storm", "storm"]
    assert share.waiting == 0


async def test_the_fair_share_hands_places_out_in_turn() -> None:
    """Each party's n-th place comes after every waiting party's (n-1)-th: ``a`` holds the
    first place, so ``b`` and ``c`` come before its second; ties go in order of arrival."""
    share = FairShare(1)
    order: list[str] = []

    await asyncio.gather(
        *(_job(share, "a", order) for _ in range(3)),
        *(_job(share, "b", order) for _ in range(2)),
        _job(share, "c", order),
    )

    assert order == ["a", "b", "c", "a", "b", "a"]
    assert share.waiting == 0


async def test_a_party_that_comes_back_later_starts_a_new_turn() -> None:
    """A party's earlier turns do not count against it once it has had no place waiting:
    its next request is as a newcomer's (no debt, no credit)."""
    share = FairShare(1)
    order: list[str] = []
    for _ in range(3):
        await _job(share, "a", order)  # a alone, three times
    await share.take("b")
    waiting = [asyncio.create_task(_job(share, p, order)) for p in ("b", "b", "a")]
    await asyncio.sleep(0)
    share.give_back("b")
    await asyncio.gather(*waiting)

    assert order == ["a", "a", "a", "a", "b", "b"]


async def test_a_waiter_that_gives_up_loses_its_turn_and_nothing_else() -> None:
    share = FairShare(1)
    order: list[str] = []
    await share.take("a")
    gone = asyncio.create_task(share.take("b"))
    stays = asyncio.create_task(_job(share, "c", order))
    await asyncio.sleep(0)
    assert share.waiting == 2
    gone.cancel()
    await asyncio.sleep(0)
    assert share.waiting == 1  # the cancelled one no longer counts
    share.give_back("a")
    await stays
    assert order == ["c"]
    await _job(share, "b", order)  # b comes back and is served at once
    assert order == ["c", "b"]
    assert share.waiting == 0


async def test_a_place_handed_to_a_waiter_that_gave_up_goes_to_the_next() -> None:
    share = FairShare(1)
    order: list[str] = []
    await share.take("a")
    gone = asyncio.create_task(share.take("b"))
    stays = asyncio.create_task(_job(share, "c", order))
    await asyncio.sleep(0)
    share.give_back("a")  # b's turn is set, but b has not run yet
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    await asyncio.wait_for(stays, 1.0)  # the place went on to c, not lost with b
    assert order == ["c"]
    await asyncio.wait_for(_job(share, "d", order), 1.0)  # and then it was freed
    assert order == ["c", "d"]
