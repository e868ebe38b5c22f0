"""An access token outlives nothing: the account it names may be deleted under it (by the
database's owner, in SQL), and what it then asks for is refused, never a 500."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from healthcare.entrypoints.container import Container
from tests.e2e.conftest import DOCTOR, PATIENT, assert_problem, sign_up

Client = AsyncTestClient[Litestar]


async def _delete_in_sql(container: Container, user_id: int) -> None:
    async with container.database().engine.begin() as connection:
        await connection.execute(text("DELETE FROM user_account WHERE id = :id"), {"id": user_id})


async def test_a_deleted_users_token_creates_nothing(client: Client, container: Container) -> None:
    gone = await sign_up(client)
    await _delete_in_sql(container, gone.id)

    for path, body in (("/api/patients/", PATIENT), ("/api/doctors/", DOCTOR)):
        response = await client.post(path, json=body, headers=gone.headers)
        problem = assert_problem(response, 401)
        assert "no longer exists" in problem["detail"]
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert_problem(await client.get("/api/auth/me/", headers=gone.headers), 401)
