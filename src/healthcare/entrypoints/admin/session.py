"""The admin's session: a signed cookie, and the CSRF token of its forms.

The cookie holds no secret of its own: who signed in, a random nonce (the CSRF token is
derived from it), a stamp of the password hash it was opened with, and when it was last
used. It is signed with a key derived from SECRET_KEY, so the browser can read but not forge
it. The server checks the account on every request: a deactivated account, a lost staff
flag or a changed password (the stamp no longer matches) ends the session, as Django's
admin does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

COOKIE = "hc_admin"
PATH = "/admin"


@dataclass(frozen=True, slots=True)
class AdminSession:
    nonce: str
    last_seen: int  # seconds since the epoch
    user_id: int | None = None
    stamp: str | None = None  # of the password hash the session was opened with

    @classmethod
    def anonymous(cls, now: datetime) -> AdminSession:
        return cls(secrets.token_urlsafe(24), int(now.timestamp()))

    def signed_in_as(self, user_id: int, stamp: str, now: datetime) -> AdminSession:
        """A new nonce on sign-in: a token seen before it is worthless after (fixation)."""
        return AdminSession(secrets.token_urlsafe(24), int(now.timestamp()), user_id, stamp)

    def seen(self, now: datetime) -> AdminSession:
        return replace(self, last_seen=int(now.timestamp()))


class SessionCodec:
    """Signs and reads the session cookie, derives CSRF tokens and password stamps."""

    def __init__(self, secret: str, idle: timedelta) -> None:
        self._key = hashlib.sha256(f"admin-session:{secret}".encode()).digest()
        self.idle = idle

    def _sign(self, text: bytes) -> str:
        return hmac.new(self._key, text, hashlib.sha256).hexdigest()

    def dump(self, session: AdminSession) -> str:
        payload = {"n": session.nonce, "t": session.last_seen}
        if session.user_id is not None:
            payload |= {"u": session.user_id, "s": session.stamp}
        # Unpadded, so that the value needs no quoting in the cookie header.
        text = json.dumps(payload, separators=(",", ":")).encode()
        body = base64.urlsafe_b64encode(text).rstrip(b"=")
        return f"{body.decode()}.{self._sign(body)}"

    def load(self, raw: str | None, now: datetime) -> AdminSession | None:
        """The session in a cookie, or None if it is missing, forged, malformed or idle
        for longer than ``idle``."""
        if not raw or raw.count(".") != 1:
            return None
        body, signature = raw.split(".")
        if not hmac.compare_digest(self._sign(body.encode()), signature):
            return None
        try:
            payload: dict[str, Any] = json.loads(
                base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            )
            session = AdminSession(
                str(payload["n"]),
                int(payload["t"]),
                None if payload.get("u") is None else int(payload["u"]),
                None if payload.get("s") is None else str(payload["s"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if now.timestamp() - session.last_seen > self.idle.total_seconds():
            return None
        return session

    def csrf_token(self, session: AdminSession) -> str:
        return self._sign(f"csrf:{session.nonce}".encode())

    def csrf_ok(self, session: AdminSession, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(self.csrf_token(session), token)

    def stamp(self, password_hash: str) -> str:
        """Changes whenever the password does; reveals nothing of the hash."""
        return self._sign(f"password:{password_hash}".encode())[:32]
