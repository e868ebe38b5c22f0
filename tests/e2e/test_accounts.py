"""Changing a password, and administrators deactivating accounts."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import PASSWORD, Account, assert_problem, create_patient

Client = AsyncTestClient[Litestar]
NEW_PASSWORD = "a brand new passphrase"


async def _login(client: Client, account: Account, password: str = PASSWORD) -> int:
    response = await client.post(
        "/api/auth/login/", json={"username": account.username, "password": password}
    )
    return response.status_code


async def test_changing_the_password_signs_out_every_login(client: Client, alice: Account) -> None:
    other_login = (
        await client.post("/api/token/", json={"username": alice.username, "password": PASSWORD})
    ).json()
    changed = await client.post(
        "/api/auth/password/",
        headers=alice.headers,
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204, changed.text
    for refresh in (alice.refresh, other_login["refresh"]):
        assert_problem(await client.post("/api/token/refresh/", json={"refresh": refresh}), 401)
    assert await _login(client, alice) == 401
    assert await _login(client, alice, NEW_PASSWORD) == 200


async def test_password_change_needs_the_current_password_and_a_good_new_one(
    client: Client, alice: Account
) -> None:
    wrong = await client.post(
        "/api/auth/password/",
        headers=alice.headers,
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
    )
    assert_problem(wrong, 400, "current_password")
    for weak in ("short", "12345678901", alice.username, "é" * 40):
        response = await client.post(
            "/api/auth/password/",
            headers=alice.headers,
            json={"current_password": PASSWORD, "new_password": weak},
        )
        assert_problem(response, 400, "new_password")
    assert_problem(
        await client.post(
            "/api/auth/password/", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        ),
        401,
    )
    # Nothing changed: the old password and the old chain still work.
    assert await _login(client, alice) == 200
    assert (
        await client.post("/api/token/refresh/", json={"refresh": alice.refresh})
    ).status_code == 200


async def test_an_administrator_deactivates_and_reactivates_an_account(
    client: Client, alice: Account, admin: Account
) -> None:
    await create_patient(client, alice)
    off = await client.post(f"/api/users/{alice.id}/deactivate/", headers=admin.headers)
    assert off.status_code == 200, off.text
    assert off.json()["is_active"] is False
    assert await _login(client, alice) == 401
    assert_problem(await client.post("/api/token/refresh/", json={"refresh": alice.refresh}), 401)
    assert_problem(await client.get("/api/auth/me/", headers=alice.headers), 401)

    on = await client.post(f"/api/users/{alice.id}/activate/", headers=admin.headers)
    assert on.json()["is_active"] is True
    again = await client.post(
        "/api/auth/login/", json={"username": alice.username, "password": PASSWORD}
    )
    assert again.status_code == 200
    # The chain and the access token revoked while deactivated stay revoked.
    assert_problem(await client.post("/api/token/refresh/", json={"refresh": alice.refresh}), 401)
    assert_problem(await client.get("/api/patients/", headers=alice.headers), 401)
    fresh = {"Authorization": f"Bearer {again.json()['access']}"}
    listed = await client.get("/api/patients/", headers=fresh)
    assert listed.headers["x-total-count"] == "1"  # the records were kept


async def test_only_administrators_change_account_status(
    client: Client, alice: Account, bob: Account, admin: Account
) -> None:
    assert_problem(
        await client.post(f"/api/users/{bob.id}/deactivate/", headers=alice.headers), 403
    )
    assert await _login(client, bob) == 200
    assert_problem(
        await client.post("/api/users/9000000000/deactivate/", headers=admin.headers), 404
    )
    assert_problem(
        await client.post(f"/api/users/{admin.id}/deactivate/", headers=admin.headers), 400, "user"
    )
    assert_problem(await client.post("/api/users/0/deactivate/", headers=admin.headers), 400)
