"""No two accounts have login names a reader cannot tell apart: a username and an email of
two accounts are never the same string, nor look-alikes, whichever registered first, on
both databases and when registrations race."""

from __future__ import annotations

import asyncio

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from tests.e2e.conftest import PASSWORD, assert_problem, unique

Client = AsyncTestClient[Litestar]


async def _register(client: Client, username: str, email: str) -> object:
    return await client.post(
        "/api/auth/register/", json={"username": username, "email": email, "password": PASSWORD}
    )


async def _login(client: Client, name: str) -> object:
    return await client.post("/api/token/", json={"username": name, "password": PASSWORD})


async def test_an_email_that_is_another_accounts_username_is_refused(client: Client) -> None:
    address = f"{unique()}@example.org"
    first = await _register(client, address, f"{unique()}@example.org")
    assert first.status_code == 201  # type: ignore[attr-defined]

    taken = await _register(client, unique(), address.upper())

    assert_problem(taken, 409, "email")
    # The string still signs in to its first owner.
    signed_in = await client.post("/api/token/", json={"username": address, "password": PASSWORD})
    me = await client.get(
        "/api/auth/me/", headers={"Authorization": f"Bearer {signed_in.json()['access']}"}
    )
    assert me.json()["id"] == first.json()["id"]  # type: ignore[attr-defined]


async def test_a_username_that_is_another_accounts_email_is_refused(client: Client) -> None:
    address = f"{unique()}@example.org"
    assert (await _register(client, unique(), address)).status_code == 201  # type: ignore[attr-defined]

    assert_problem(await _register(client, address, f"{unique()}@example.org"), 409, "username")


@pytest.mark.parametrize(
    "impostor",
    ["\u0430dmin", "adm\u0131n", "adm\u0130n", "\uff41dmin"],
    ids=["cyrillic-a", "dotless-i", "dotted-capital-i", "fullwidth-a"],
)
async def test_look_alike_usernames_are_refused(client: Client, impostor: str) -> None:
    suffix = unique("")
    registered = await _register(client, f"admin{suffix}", f"{unique()}@example.org")
    assert registered.status_code == 201  # type: ignore[attr-defined]

    refused = await _register(client, impostor + suffix, f"{unique()}@example.org")

    assert_problem(refused, 409, "username")


async def test_racing_registrations_of_one_name_have_one_winner(client: Client) -> None:
    for _ in range(3):
        address = f"{unique()}@example.org"
        answers = await asyncio.gather(
            _register(client, address, f"{unique()}@example.org"),
            _register(client, unique(), address),
        )
        statuses = sorted(answer.status_code for answer in answers)  # type: ignore[attr-defined]
        assert statuses == [201, 409], [answer.text for answer in answers]  # type: ignore[attr-defined]
