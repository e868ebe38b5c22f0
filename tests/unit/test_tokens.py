"""The JWT adapter: HS256 only, typed tokens, every claim required (RFC 8725)."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from healthcare.adapters.security import tokens as token_module
from healthcare.adapters.security.revocations import RevocationList
from healthcare.adapters.security.tokens import JwtTokenService
from healthcare.application.ports import RefreshClaims
from healthcare.domain.entities import Principal
from healthcare.domain.errors import AuthenticationFailed
from tests.unit.factories import SECRET
from tests.unit.fakes import FixedClock


def service(clock: FixedClock | None = None, secret: str = SECRET, **kw: Any) -> JwtTokenService:
    return JwtTokenService(secret, clock or FixedClock(), **kw)


def b64url(part: dict[str, Any] | bytes) -> str:
    raw = part if isinstance(part, bytes) else json.dumps(part).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims(kind: str = "access", **overrides: Any) -> dict[str, Any]:
    """A complete, valid claim set as the service issues it."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "iss": "healthcare",
        "sub": "7",
        "token_type": kind,
        "jti": "0123456789abcdef",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    values |= {"adm": False} if kind == "access" else {"sid": "session-1"}
    return values | overrides


def signed(payload: dict[str, Any], secret: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=algorithm)


def read(token: str, kind: str) -> Principal | RefreshClaims:
    tokens = service()
    return tokens.read_access(token) if kind == "access" else tokens.read_refresh(token)


class TestRoundTrip:
    @pytest.mark.parametrize("is_admin", [False, True])
    def test_access(self, is_admin: bool) -> None:
        tokens = service()

        issued = tokens.issue_access(Principal(42, is_admin=is_admin))

        assert tokens.read_access(issued.token) == Principal(42, is_admin=is_admin)
        assert issued.expires_in == 900
        assert len(issued.jti) == 32

    def test_refresh(self) -> None:
        tokens = service()

        issued = tokens.issue_refresh(42, "session-abc")

        assert tokens.read_refresh(issued.token) == RefreshClaims(42, "session-abc", issued.jti)
        assert issued.expires_in == 7 * 24 * 3600

    def test_claims_and_header(self) -> None:
        clock = FixedClock()
        issued = service(clock).issue_access(Principal(42))

        header = jwt.get_unverified_header(issued.token)
        payload = jwt.decode(issued.token, options={"verify_signature": False})
        assert header == {"alg": "HS256", "typ": "JWT"}
        assert payload == {
            "iss": "healthcare",
            "sub": "42",
            "user_id": 42,  # simplejwt's claim, as an integer
            "token_type": "access",
            "jti": issued.jti,
            "iat": int(clock.now().timestamp()),
            "exp": int(clock.now().timestamp()) + 900,
            "adm": False,
            "iat_ms": int(clock.now().timestamp()) * 1000,  # whole seconds on this clock
        }

    def test_refresh_tokens_carry_simplejwt_claims_too(self) -> None:
        clock = FixedClock()
        issued = service(clock).issue_refresh(42, "chain")

        payload = jwt.decode(issued.token, options={"verify_signature": False})
        assert {k: payload[k] for k in ("token_type", "user_id", "jti", "iat", "exp")} == {
            "token_type": "refresh",
            "user_id": 42,
            "jti": issued.jti,
            "iat": int(clock.now().timestamp()),
            "exp": int(clock.now().timestamp()) + 7 * 24 * 3600,
        }
        assert payload["sub"] == "42"

    def test_configurable_lifetimes(self) -> None:
        tokens = service(access_lifetime=timedelta(minutes=1), refresh_lifetime=timedelta(hours=2))

        assert tokens.issue_access(Principal(1)).expires_in == 60
        assert tokens.issue_refresh(1, "s").expires_in == 7200

    def test_every_token_has_its_own_jti(self) -> None:
        tokens = service()

        jtis = {tokens.issue_refresh(1, "s").jti for _ in range(10)}

        assert len(jtis) == 10

    def test_only_a_literal_true_admin_claim_grants_admin(self) -> None:
        for value in ["true", 1, "yes"]:
            assert service().read_access(signed(claims(adm=value))).is_admin is False
        assert service().read_access(signed(claims(adm=True))).is_admin is True

    def test_hand_made_valid_token_is_accepted(self) -> None:
        # Guards the helpers below: the refusals must come from the one thing changed.
        assert service().read_access(signed(claims())) == Principal(7)
        assert service().read_refresh(signed(claims("refresh"))) == RefreshClaims(
            7, "session-1", "0123456789abcdef"
        )


class TestTokenTypes:
    def test_access_token_is_not_a_refresh_token(self) -> None:
        tokens = service()

        with pytest.raises(AuthenticationFailed) as caught:
            tokens.read_refresh(tokens.issue_access(Principal(1)).token)

        assert caught.value.message == "Token is not a refresh token"

    def test_refresh_token_is_not_an_access_token(self) -> None:
        tokens = service()

        with pytest.raises(AuthenticationFailed) as caught:
            tokens.read_access(tokens.issue_refresh(1, "s").token)

        assert caught.value.message == "Token is not an access token"

    @pytest.mark.parametrize("token_type", ["ACCESS", "id", "", None])
    def test_unknown_type(self, token_type: object) -> None:
        with pytest.raises(AuthenticationFailed):
            read(signed(claims(token_type=token_type)), "access")


class TestTime:
    def test_expired_access_token(self) -> None:
        past = FixedClock(datetime.now(UTC) - timedelta(minutes=16))
        token = service(past).issue_access(Principal(1)).token

        with pytest.raises(AuthenticationFailed) as caught:
            service().read_access(token)

        assert caught.value.message == "Token is invalid or expired"

    def test_access_token_within_its_lifetime(self) -> None:
        recent = FixedClock(datetime.now(UTC) - timedelta(minutes=14))
        token = service(recent).issue_access(Principal(1)).token

        assert service().read_access(token) == Principal(1)

    def test_expired_refresh_token(self) -> None:
        past = FixedClock(datetime.now(UTC) - timedelta(days=7, seconds=5))
        token = service(past).issue_refresh(1, "s").token

        with pytest.raises(AuthenticationFailed):
            service().read_refresh(token)

    def test_token_from_the_future(self) -> None:
        future = FixedClock(datetime.now(UTC) + timedelta(hours=1))
        token = service(future).issue_access(Principal(1)).token

        with pytest.raises(AuthenticationFailed):
            service().read_access(token)


class TestVerifiedTokens:
    """Verified access tokens are remembered; their expiry is still checked every time."""

    def test_a_remembered_token_still_expires(self) -> None:
        tokens = service(access_lifetime=timedelta(seconds=1))
        token = tokens.issue_access(Principal(7)).token
        assert tokens.read_access(token) == Principal(7)
        assert tokens.read_access(token) == Principal(7)  # from memory
        expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
        while time.time() < expires_at:
            time.sleep(0.05)
        with pytest.raises(AuthenticationFailed):
            tokens.read_access(token)

    def test_memory_is_bounded_and_forgets_the_oldest(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(token_module, "VERIFIED_ACCESS_TOKENS", 3)
        tokens = service()
        issued = [tokens.issue_access(Principal(n)).token for n in range(1, 6)]
        assert [tokens.read_access(t).user_id for t in issued] == [1, 2, 3, 4, 5]
        assert len(tokens._verified) == 3
        verified: list[str] = []
        decode = tokens._decode

        def verifying(token: str, kind: str) -> dict[str, Any]:
            verified.append(token)
            return decode(token, kind)

        monkeypatch.setattr(tokens, "_decode", verifying)

        assert tokens.read_access(issued[4]) == Principal(5)  # the newest: remembered
        assert verified == []
        assert tokens.read_access(issued[0]) == Principal(1)  # the oldest: forgotten...
        assert verified == [issued[0]]  # ...so verified again

    def test_a_remembered_token_is_not_a_refresh_token(self) -> None:
        tokens = service()
        token = tokens.issue_access(Principal(1)).token
        tokens.read_access(token)
        with pytest.raises(AuthenticationFailed):
            tokens.read_refresh(token)


class TestForgery:
    def test_tampered_payload(self) -> None:
        token = service().issue_access(Principal(1)).token
        header, _, signature = token.split(".")
        promoted = jwt.decode(token, options={"verify_signature": False}) | {"sub": "2"}

        with pytest.raises(AuthenticationFailed):
            service().read_access(f"{header}.{b64url(promoted)}.{signature}")

    def test_tampered_signature(self) -> None:
        token = service().issue_access(Principal(1)).token
        header, payload, signature = token.split(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

        with pytest.raises(AuthenticationFailed):
            service().read_access(f"{header}.{payload}.{flipped}")

    def test_signature_removed(self) -> None:
        header, payload, _ = service().issue_access(Principal(1)).token.split(".")

        with pytest.raises(AuthenticationFailed):
            service().read_access(f"{header}.{payload}.")

    def test_other_secret(self) -> None:
        other = service(secret="another-secret-that-is-also-long-enough!")
        token = other.issue_access(Principal(1)).token

        with pytest.raises(AuthenticationFailed):
            service().read_access(token)

    @pytest.mark.parametrize("kind", ["access", "refresh"])
    def test_alg_none_built_by_hand(self, kind: str) -> None:
        token = f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{b64url(claims(kind))}."

        with pytest.raises(AuthenticationFailed):
            read(token, kind)

    @pytest.mark.parametrize("alg", ["none", "None", "NONE"])
    def test_alg_none_variants_with_the_real_signature(self, alg: str) -> None:
        real = signed(claims())
        _, payload, signature = real.split(".")
        token = f"{b64url({'alg': alg, 'typ': 'JWT'})}.{payload}.{signature}"

        with pytest.raises(AuthenticationFailed):
            service().read_access(token)

    def test_alg_none_via_pyjwt(self) -> None:
        token = jwt.encode(claims(), None, algorithm="none")
        assert token.endswith(".")  # pyjwt really produced an unsigned token

        with pytest.raises(AuthenticationFailed):
            service().read_access(token)

    @pytest.mark.parametrize("alg", ["HS384", "HS512"])
    def test_other_hmac_algorithm_with_the_right_secret(self, alg: str) -> None:
        secret = SECRET * 2  # long enough for pyjwt not to warn about SHA-512 keys
        token = signed(claims(), secret=secret, algorithm=alg)

        with pytest.raises(AuthenticationFailed):
            service(secret=secret).read_access(token)

    @pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "a.b", "\u00e9.\u00e9.\u00e9"])
    def test_garbage(self, token: str) -> None:
        with pytest.raises(AuthenticationFailed):
            service().read_access(token)


class TestClaims:
    @pytest.mark.parametrize("kind", ["access", "refresh"])
    @pytest.mark.parametrize("missing", ["exp", "iat", "jti", "sub", "token_type", "iss"])
    def test_missing_claim(self, kind: str, missing: str) -> None:
        payload = claims(kind)
        del payload[missing]

        with pytest.raises(AuthenticationFailed):
            read(signed(payload), kind)

    def test_refresh_without_session_id(self) -> None:
        payload = claims("refresh")
        del payload["sid"]

        with pytest.raises(AuthenticationFailed):
            service().read_refresh(signed(payload))

    @pytest.mark.parametrize("sid", [None, 5, ["s"]])
    def test_refresh_with_a_non_string_session_id(self, sid: object) -> None:
        with pytest.raises(AuthenticationFailed):
            service().read_refresh(signed(claims("refresh", sid=sid)))

    @pytest.mark.parametrize("kind", ["access", "refresh"])
    @pytest.mark.parametrize("sub", ["abc", "", "-1", "1.5", " 7", "7 ", "0x7", 7, None])
    def test_non_numeric_subject(self, kind: str, sub: object) -> None:
        with pytest.raises(AuthenticationFailed):
            read(signed(claims(kind, sub=sub)), kind)

    def test_non_decimal_digit_subject(self) -> None:
        with pytest.raises(AuthenticationFailed):
            service().read_access(signed(claims(sub="\u00b2")))

    def test_wrong_issuer(self) -> None:
        with pytest.raises(AuthenticationFailed):
            service().read_access(signed(claims(iss="someone-else")))

    def test_issuer_is_configurable(self) -> None:
        token = service(issuer="staging").issue_access(Principal(3)).token

        assert service(issuer="staging").read_access(token) == Principal(3)
        with pytest.raises(AuthenticationFailed):
            service().read_access(token)

    @pytest.mark.parametrize("jti", [5, None, ["x"]])
    def test_non_string_jti(self, jti: object) -> None:
        with pytest.raises(AuthenticationFailed):
            service().read_refresh(signed(claims("refresh", jti=jti)))


class TestSecret:
    @pytest.mark.parametrize(
        "secret",
        ["", "x" * 31, "\u00e9" * 15 + "x"],  # the last: 16 characters, 31 bytes
    )
    def test_shorter_than_32_bytes_refused(self, secret: str) -> None:
        with pytest.raises(ValueError, match="at least 32 bytes"):
            JwtTokenService(secret, FixedClock())

    @pytest.mark.parametrize("secret", ["x" * 32, "\u00e9" * 16])
    def test_32_bytes_accepted(self, secret: str) -> None:
        tokens = JwtTokenService(secret, FixedClock())

        assert tokens.read_access(tokens.issue_access(Principal(9)).token) == Principal(9)


def test_the_signing_key_is_checked_once_not_for_every_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checks: list[object] = []
    original = jwt.algorithms.HMACAlgorithm.prepare_key

    def counted(self: jwt.algorithms.HMACAlgorithm, key: str | bytes) -> bytes:
        checks.append(key)
        return original(self, key)

    monkeypatch.setattr(jwt.algorithms.HMACAlgorithm, "prepare_key", counted)
    tokens = service()
    for user_id in range(1, 6):
        pair = tokens.issue_refresh(user_id, f"session-{user_id}")
        assert tokens.read_refresh(pair.token).user_id == user_id
        access = tokens.issue_access(Principal(user_id, False))
        assert tokens.read_access(access.token).user_id == user_id
    assert checks == [SECRET]


def test_an_asymmetric_key_is_still_refused_as_a_secret() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\n" + "A" * 64 + "\n-----END PUBLIC KEY-----\n"
    with pytest.raises(jwt.InvalidKeyError):
        service(secret=pem).issue_access(Principal(1, False))


class TestRevocation:
    """A user's "not before": tokens issued earlier are refused, cached or not, and tokens
    issued from then on (even within the same second) are not."""

    def test_tokens_issued_before_are_refused_and_later_ones_kept(self) -> None:
        clock = FixedClock()
        revocations = RevocationList()
        tokens = JwtTokenService(SECRET, clock, revocations=revocations)
        before = tokens.issue_access(Principal(42)).token
        other_user = tokens.issue_access(Principal(43)).token
        assert tokens.read_access(before).user_id == 42  # now cached

        clock.at += timedelta(milliseconds=300)
        revocations.revoke_before(42, clock.now())

        with pytest.raises(AuthenticationFailed, match="revoked"):
            tokens.read_access(before)
        with pytest.raises(AuthenticationFailed, match="revoked"):
            JwtTokenService(SECRET, clock, revocations=revocations).read_access(before)
        assert tokens.read_access(other_user).user_id == 43
        after = tokens.issue_access(Principal(42)).token  # the same second, later
        assert tokens.read_access(after).user_id == 42

    def test_a_token_without_milliseconds_counts_from_its_second(self) -> None:
        clock = FixedClock()
        revocations = RevocationList()
        tokens = JwtTokenService(SECRET, clock, revocations=revocations)
        old_style = signed(claims(sub="42", iat=int(clock.now().timestamp()) - 5))
        revocations.revoke_before(42, clock.now())

        with pytest.raises(AuthenticationFailed, match="revoked"):
            tokens.read_access(old_style)

    def test_old_revocations_are_forgotten(self) -> None:
        revocations = RevocationList()
        revocations.note(1, int((datetime.now(UTC) - timedelta(hours=1)).timestamp() * 1000))
        revocations.note(2, int(datetime.now(UTC).timestamp() * 1000))
        revocations.note(2, 5)  # an older note never moves it back

        revocations.forget_older_than(900)

        assert list(revocations.not_before) == [2]
        assert revocations.not_before[2] > 5
