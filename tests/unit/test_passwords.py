"""The bcrypt adapter, with the cheapest cost factor bcrypt allows."""

from __future__ import annotations

import os
import threading
from typing import Any

import bcrypt
import pytest

from healthcare.adapters.security.passwords import LOWEST_PRIORITY, BcryptPasswordHasher


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
    assert await hasher._run(priority) == LOWEST_PRIORITY
    assert priority() == before  # the event loop's thread keeps its own
    assert await hasher.verify("a password", await hasher.hash("a password"))
