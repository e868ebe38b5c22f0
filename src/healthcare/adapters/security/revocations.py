"""Which access tokens this process refuses before they expire: per user, a "not before".

Access tokens are checked without the database (one dict lookup on the hot path). When an
account is deactivated or its password changed, the use case notes the time here at once,
and the change is written to the database (``token_revocation``) in its own transaction;
other processes learn it from there (``RevocationFeed``: PostgreSQL's LISTEN/NOTIFY, or
polling on SQLite) within a second. Only revocations younger than the access-token
lifetime matter: every token issued before an older one has expired anyway.
"""

from __future__ import annotations

import time
from datetime import datetime


def epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class RevocationList:
    """Per user id, the time (ms since the epoch) before which their access tokens were
    issued in vain. Read by the token service on every request: a plain dict."""

    def __init__(self) -> None:
        self.not_before: dict[int, int] = {}

    def revoke_before(self, user_id: int, when: datetime) -> None:
        self.note(user_id, epoch_ms(when))

    def note(self, user_id: int, not_before_ms: int) -> None:
        if not_before_ms > self.not_before.get(user_id, 0):
            self.not_before[user_id] = not_before_ms

    def forget_older_than(self, seconds: float) -> None:
        """Drop what no unexpired token can be affected by: memory stays bounded."""
        cutoff = int((time.time() - seconds) * 1000)
        for user_id in [u for u, ms in self.not_before.items() if ms < cutoff]:
            del self.not_before[user_id]
