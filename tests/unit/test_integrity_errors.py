"""Whatever constraint violation escapes the repositories is the client's clash with the
data (409), never a 500: the error mapper's last line of defence."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from litestar import Litestar, get
from litestar.testing import TestClient
from sqlalchemy.exc import IntegrityError

from healthcare.entrypoints.http.problems import EXCEPTION_HANDLERS

VIOLATIONS: list[Exception] = [
    IntegrityError("INSERT ...", None, sqlite3.IntegrityError("FOREIGN KEY constraint failed")),
    IntegrityError("INSERT ...", None, sqlite3.IntegrityError("CHECK constraint failed: x")),
    IntegrityError("UPDATE ...", None, psycopg.errors.UniqueViolation("duplicate key")),
    psycopg.errors.ForeignKeyViolation("insert or update violates foreign key constraint"),
    sqlite3.IntegrityError("UNIQUE constraint failed: t.c"),
]


@pytest.mark.parametrize("violation", VIOLATIONS, ids=lambda e: type(e).__name__)
def test_an_integrity_error_that_reaches_the_mapper_is_a_409(violation: Exception) -> None:
    @get("/clash")
    async def clash() -> None:
        raise violation

    app = Litestar([clash], exception_handlers=dict(EXCEPTION_HANDLERS))
    with TestClient(app) as client:
        response = client.get("/clash")

    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "urn:healthcare:problem:conflict"
    assert "constraint" not in body["detail"]  # nothing about the schema leaks
