"""JSON Web Tokens (RFC 7519) signed with HS256, following RFC 8725."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import jwt
from jwt.algorithms import HMACAlgorithm

from healthcare.adapters.security.revocations import RevocationList, epoch_ms
from healthcare.application.ports import Clock, IssuedToken, RefreshClaims
from healthcare.domain.entities import Principal
from healthcare.domain.errors import AuthenticationFailed

ALGORITHM = "HS256"
ACCESS, REFRESH = "access", "refresh"
MIN_SECRET_BYTES = 32
_REQUIRED = ["exp", "iat", "jti", "sub", "token_type"]
_WRONG_TYPE = {ACCESS: "Token is not an access token", REFRESH: "Token is not a refresh token"}
REVOKED = "Token has been revoked"
# The issue time in milliseconds: iat is whole seconds (and simplejwt's clients expect an
# integer there), too coarse to tell a token issued just before a revocation from one
# issued just after it (a password change, then signing in again at once).
ISSUED_MS = "iat_ms"
VERIFIED_ACCESS_TOKENS = 4096  # remembered per service (per worker process)


class _HS256WithCheckedKey(HMACAlgorithm):
    """HS256 whose key is checked and converted once, not for every token.

    PyJWT prepares the key on every encode and decode: it tries to parse the secret as a
    PEM, SSH or DER key and as JSON, to refuse asymmetric keys used as HMAC secrets. That
    was about 5 % of a refresh's CPU, for a secret that never changes. The same checks
    still run, on the first use of each key.
    """

    def __init__(self) -> None:
        super().__init__(HMACAlgorithm.SHA256)
        self._prepared: dict[str | bytes, bytes] = {}

    def prepare_key(self, key: str | bytes) -> bytes:
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = super().prepare_key(key)
            if len(self._prepared) < 4:  # the service's one secret, in practice
                self._prepared[key] = prepared
        return prepared


def _pyjwt() -> jwt.PyJWT:
    """A PyJWT of our own that knows only HS256 (with the key checked once)."""
    codec = jwt.PyJWT()
    # PyJWT offers no public way to give its PyJWT a PyJWS with other algorithms: replace
    # the one it made (pinned PyJWT; tests/unit/test_tokens.py checks this still takes).
    signatures = jwt.PyJWS(algorithms=[ALGORITHM])
    signatures.unregister_algorithm(ALGORITHM)
    signatures.register_algorithm(ALGORITHM, _HS256WithCheckedKey())
    signatures.options = codec._jws.options
    codec._jws = signatures
    return codec


class JwtTokenService:
    def __init__(
        self,
        secret: str,
        clock: Clock,
        access_lifetime: timedelta = timedelta(minutes=15),
        refresh_lifetime: timedelta = timedelta(days=7),
        issuer: str = "healthcare",
        *,
        revocations: RevocationList | None = None,
    ) -> None:
        if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
            raise ValueError(f"the signing secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._clock = clock
        self._access_lifetime = access_lifetime
        self._refresh_lifetime = refresh_lifetime
        self._issuer = issuer
        # Access tokens already verified, with their expiry (seconds since the epoch). A
        # client sends the same access token with every request of its lifetime; checking
        # its signature and claims each time was ~8 % of a read's CPU. A token's bytes
        # decide its validity, except for the time and revocation: the expiry is checked
        # on every hit, against the same clock PyJWT uses, and so is the user's "not
        # before" (one dict lookup).
        self._verified: dict[str, tuple[Principal, float, int]] = {}
        self._jwt = _pyjwt()
        self._revoked = (revocations or RevocationList()).not_before

    def issue_access(self, principal: Principal) -> IssuedToken:
        extra = {"adm": principal.is_admin, ISSUED_MS: epoch_ms(self._clock.now())}
        return self._issue(ACCESS, principal.user_id, self._access_lifetime, extra)

    def issue_refresh(self, user_id: int, session_id: str) -> IssuedToken:
        return self._issue(REFRESH, user_id, self._refresh_lifetime, {"sid": session_id})

    def read_access(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is None:
            claims = self._decode(token, ACCESS)
            principal = Principal(user_id=_user_id(claims), is_admin=claims.get("adm") is True)
            known = self._remember(token, principal, claims)
        principal, expires_at, issued_ms = known
        if time.time() >= expires_at:
            self._verified.pop(token, None)
            raise AuthenticationFailed("Token is invalid or expired")
        if self._revoked and issued_ms < self._revoked.get(principal.user_id, 0):
            raise AuthenticationFailed(REVOKED)
        return principal

    def _remember(
        self, token: str, principal: Principal, claims: dict[str, Any]
    ) -> tuple[Principal, float, int]:
        issued = claims.get(ISSUED_MS)
        if not isinstance(issued, int) or isinstance(issued, bool):
            issued = int(claims["iat"]) * 1000  # PyJWT has checked it is a number
        known = (principal, float(claims["exp"]), issued)
        if len(self._verified) >= VERIFIED_ACCESS_TOKENS:
            # Forget the oldest (dicts keep insertion order): memory stays bounded.
            del self._verified[next(iter(self._verified))]
        self._verified[token] = known
        return known

    def read_refresh(self, token: str) -> RefreshClaims:
        claims = self._decode(token, REFRESH)
        session_id = claims.get("sid")
        if not isinstance(session_id, str):
            raise AuthenticationFailed("Token is invalid or expired")
        return RefreshClaims(_user_id(claims), session_id, str(claims["jti"]))

    def _issue(
        self, kind: str, user_id: int, lifetime: timedelta, extra: dict[str, Any]
    ) -> IssuedToken:
        now = self._clock.now()
        jti = uuid.uuid4().hex
        # simplejwt's claims (token_type, user_id, jti, iat, exp) beside the registered ones,
        # so that clients written for it can read the user from the token.
        claims = {
            "iss": self._issuer,
            "sub": str(user_id),
            "user_id": user_id,
            "token_type": kind,
            "jti": jti,
            "iat": now,
            "exp": now + lifetime,
            **extra,
        }
        token = self._jwt.encode(claims, self._secret, algorithm=ALGORITHM, headers={"typ": "JWT"})
        return IssuedToken(token, jti, int(lifetime.total_seconds()))

    def _decode(self, token: str, kind: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = self._jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],  # pinned: never trust the header's alg
                issuer=self._issuer,
                options={"require": [*_REQUIRED, "iss"]},
            )
        except jwt.PyJWTError as error:
            raise AuthenticationFailed("Token is invalid or expired") from error
        if claims.get("token_type") != kind:
            raise AuthenticationFailed(_WRONG_TYPE[kind])
        return claims


def _user_id(claims: dict[str, Any]) -> int:
    subject = claims.get("sub")
    # ASCII digits only ("²".isdigit() is true), and no longer than a BIGINT.
    if not (
        isinstance(subject, str) and subject.isascii() and subject.isdigit() and len(subject) <= 19
    ):
        raise AuthenticationFailed("Token is invalid or expired")
    return int(subject)
