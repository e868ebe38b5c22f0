"""bcrypt password hashing, run in worker threads (bcrypt releases the GIL)."""

from __future__ import annotations

import asyncio

import bcrypt

from healthcare.domain.rules import PASSWORD_MAX_BYTES


class BcryptPasswordHasher:
    def __init__(self, rounds: int = 12) -> None:
        self._rounds = rounds
        # Checked against when the username is unknown, so that path costs the same.
        self._decoy_hash = bcrypt.hashpw(b"decoy password", bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        secret = _encode(password)
        hashed = await asyncio.to_thread(bcrypt.hashpw, secret, bcrypt.gensalt(self._rounds))
        return hashed.decode("ascii")

    async def verify(self, password: str, password_hash: str) -> bool:
        secret = _encode(password)
        try:
            return await asyncio.to_thread(bcrypt.checkpw, secret, password_hash.encode("ascii"))
        except ValueError:  # a malformed stored hash is a failed check, not a crash
            return False

    async def waste_time(self, password: str) -> None:
        await asyncio.to_thread(bcrypt.checkpw, _encode(password), self._decoy_hash)


def _encode(password: str) -> bytes:
    secret = password.encode("utf-8")
    # bcrypt 5 raises on longer input; callers refuse it earlier, this keeps the promise.
    return secret[:PASSWORD_MAX_BYTES]
