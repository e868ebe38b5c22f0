"""Registration, sign-in, tokens and the two route sets of the seed service."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import PASSWORD, SECRET, Account, assert_problem, sign_up, unique

Client = AsyncTestClient[Litestar]


@pytest.mark.parametrize("path", ["/api/auth/register/", "/api/register/", "/api/register"])
async def test_register_on_every_route_returns_the_user_without_secrets(
    client: Client, path: str
) -> None:
    username = unique()
    response = await client.post(
        path, json={"username": username, "email": f"{username}@x.org", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["username"] == username
    assert body["email"] == f"{username}@x.org"
    assert isinstance(body["id"], int) and body["id"] > 0
    assert body["date_joined"].endswith("Z") or "+00:00" in body["date_joined"]
    assert "password" not in response.text and PASSWORD not in response.text


async def test_username_and_email_are_unique_regardless_of_case(client: Client) -> None:
    account = await sign_up(client)
    clash = await client.post(
        "/api/auth/register/",
        json={"username": account.username.upper(), "email": "other@x.org", "password": PASSWORD},
    )
    assert_problem(clash, 409, "username")
    clash = await client.post(
        "/api/auth/register/",
        json={"username": unique(), "email": account.email.upper(), "password": PASSWORD},
    )
    assert_problem(clash, 409, "email")


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"password": "short"}, ["password"]),
        ({"password": "1234567890"}, ["password"]),
        ({"password": "é" * 40}, ["password"]),  # 80 bytes: over bcrypt's limit
        ({"username": "ab"}, ["username"]),
        ({"username": "has space"}, ["username"]),
        ({"username": "x" * 151}, ["username"]),
        ({"username": "\ufdfa" * 150}, ["username"]),  # NFKC grows it 18-fold
        ({"email": "not-an-email"}, ["email"]),
        ({"username": 42}, ["username"]),
        ({"is_staff": True}, ["is_staff"]),
    ],
)
async def test_register_rejects_bad_input_naming_the_field(
    client: Client, changes: dict[str, object], fields: list[str]
) -> None:
    username = unique()
    body = {"username": username, "email": f"{username}@x.org", "password": PASSWORD, **changes}
    assert_problem(await client.post("/api/auth/register/", json=body), 400, *fields)
    # Nothing was created: the same username still registers cleanly.
    ok = await client.post(
        "/api/auth/register/",
        json={"username": username, "email": f"{username}@x.org", "password": PASSWORD},
    )
    assert ok.status_code == 201


async def test_register_password_equal_to_username_is_rejected(client: Client) -> None:
    username = unique()
    response = await client.post(
        "/api/auth/register/",
        json={"username": username, "email": f"{username}@x.org", "password": username.upper()},
    )
    assert_problem(response, 400, "password")


async def test_register_lists_several_bad_fields_at_once(client: Client) -> None:
    response = await client.post(
        "/api/auth/register/",
        json={"username": "bad name!", "email": "nope", "password": "12345678"},
    )
    assert_problem(response, 400, "username", "email", "password")


async def test_register_missing_fields_and_bad_json(client: Client) -> None:
    assert_problem(await client.post("/api/auth/register/", json={"username": unique()}), 400)
    bad = await client.post(
        "/api/auth/register/", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(bad, 400)
    assert_problem(await client.post("/api/auth/register/", json=[1, 2]), 400)


@pytest.mark.parametrize("path", ["/api/auth/login/", "/api/token/", "/api/token"])
async def test_login_on_every_route_gives_a_bearer_pair(client: Client, path: str) -> None:
    account = await sign_up(client)
    response = await client.post(path, json={"username": account.username, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 15 * 60
    claims = jwt.decode(body["access"], SECRET, algorithms=["HS256"], issuer="healthcare")
    assert claims["sub"] == str(account.id) and claims["token_type"] == "access"
    assert {"exp", "iat", "jti"} <= claims.keys()


async def test_login_by_email_in_any_case(client: Client) -> None:
    account = await sign_up(client)
    for body in (
        {"username": account.email.upper(), "password": PASSWORD},
        {"email": account.email, "password": PASSWORD},
    ):
        response = await client.post("/api/auth/login/", json=body)
        assert response.status_code == 200, response.text


async def test_wrong_password_and_unknown_user_get_the_same_401(client: Client) -> None:
    account = await sign_up(client)
    wrong = await client.post(
        "/api/auth/login/", json={"username": account.username, "password": "not the password"}
    )
    unknown = await client.post(
        "/api/auth/login/", json={"username": unique(), "password": "not the password"}
    )
    too_long = await client.post(
        "/api/auth/login/", json={"username": account.username, "password": "é" * 100}
    )
    bodies = [assert_problem(r, 401) for r in (wrong, unknown, too_long)]
    assert len({b["detail"] for b in bodies}) == 1
    assert_problem(await client.post("/api/auth/login/", json={"password": "x"}), 400, "username")


@pytest.mark.parametrize("path", ["/api/auth/token/refresh/", "/api/token/refresh/"])
async def test_refresh_rotates_and_reuse_revokes_the_chain(
    rotating_client: Client, path: str
) -> None:
    """With REFRESH_TOKEN_ROTATION on (tests/e2e/test_drf_clients.py has the default)."""
    client = rotating_client
    account = await sign_up(client)
    first = await client.post(path, json={"refresh": account.refresh})
    assert first.status_code == 200, first.text
    fresh = first.json()
    assert fresh["refresh"] != account.refresh
    me = await client.get("/api/auth/me/", headers={"Authorization": f"Bearer {fresh['access']}"})
    assert me.status_code == 200
    # The spent token comes back: refused, and the whole chain dies with it.
    assert_problem(await client.post(path, json={"refresh": account.refresh}), 401)
    assert_problem(await client.post(path, json={"refresh": fresh["refresh"]}), 401)
    # Another login is a separate chain and still works.
    again = await client.post(
        "/api/auth/login/", json={"username": account.username, "password": PASSWORD}
    )
    assert (await client.post(path, json={"refresh": again.json()["refresh"]})).status_code == 200


async def test_tokens_are_not_interchangeable(client: Client, alice: Account) -> None:
    as_refresh = await client.post("/api/auth/token/refresh/", json={"refresh": alice.access})
    assert_problem(as_refresh, 401)
    as_access = await client.get(
        "/api/auth/me/", headers={"Authorization": f"Bearer {alice.refresh}"}
    )
    assert_problem(as_access, 401)


async def test_logout_revokes_the_chain(client: Client, alice: Account) -> None:
    out = await client.post(
        "/api/auth/logout/", json={"refresh": alice.refresh}, headers=alice.headers
    )
    assert out.status_code == 204
    assert_problem(await client.post("/api/token/refresh/", json={"refresh": alice.refresh}), 401)


async def test_logout_needs_an_access_token_and_the_callers_own_refresh_token(
    client: Client, alice: Account, bob: Account
) -> None:
    assert_problem(await client.post("/api/auth/logout/", json={"refresh": alice.refresh}), 401)
    foreign = await client.post(
        "/api/auth/logout/", json={"refresh": alice.refresh}, headers=bob.headers
    )
    assert_problem(foreign, 401)
    # Alice's chain survived Bob's attempt.
    assert (
        await client.post("/api/token/refresh/", json={"refresh": alice.refresh})
    ).status_code == 200


async def test_me_returns_the_caller(client: Client, alice: Account) -> None:
    response = await client.get("/api/auth/me", headers=alice.headers)
    assert response.status_code == 200
    assert response.json()["username"] == alice.username
    assert response.json()["is_staff"] is False


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(account: Account, **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "healthcare",
        "sub": str(account.id),
        "token_type": "access",
        "jti": "x",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return claims


async def test_bad_access_tokens_get_401(client: Client, alice: Account) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    header, _, signature = alice.access.split(".")
    tampered_payload = _b64(
        {**jwt.decode(alice.access, options={"verify_signature": False}), "sub": "1"}
    )
    bad_tokens = {
        "expired": jwt.encode(
            _claims(alice, iat=past, exp=past + timedelta(minutes=1)), SECRET, algorithm="HS256"
        ),
        "tampered": f"{header}.{tampered_payload}.{signature}",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(alice))}.",
        "wrong key": jwt.encode(
            _claims(alice), "another-secret-that-is-also-32-bytes-long", algorithm="HS256"
        ),
        "wrong type": jwt.encode(_claims(alice, token_type="refresh"), SECRET, algorithm="HS256"),
        "HS512": jwt.encode(_claims(alice), SECRET + SECRET, algorithm="HS512"),
        "no exp": jwt.encode(
            {k: v for k, v in _claims(alice).items() if k != "exp"}, SECRET, algorithm="HS256"
        ),
        "garbage": "not.a.token",
    }
    for name, token in bad_tokens.items():
        response = await client.get("/api/patients/", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", "Token abc", "Basic Zm9vOmJhcg=="]
)
async def test_missing_or_malformed_authorization_gets_401(
    client: Client, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    assert_problem(await client.get("/api/patients/", headers=headers), 401)
