"""The migrations: up, down and up again on fresh databases; and no drift from the models."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, make_url, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from healthcare.adapters.lookalikes import login_name_key
from healthcare.adapters.persistence.sqlalchemy import current, downgrade, head, upgrade
from healthcare.adapters.persistence.sqlalchemy.engine import create_engine
from healthcare.adapters.persistence.sqlalchemy.tables import (
    DIALECT_INDEXES,
    DIALECT_TABLES,
    metadata,
)

FIRST_TABLES = {"doctor", "patient", "patient_doctor", "refresh_session", "user_account"}
TABLES = FIRST_TABLES | {
    "audit_event",
    "patient_count",
    "mapping_count",
    "doctor_count",
    "login_name",
    "token_revocation",
}
HEAD = head()  # what Alembic finds: a new migration needs no edit here


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    url: str = request.getfixturevalue("throwaway_postgres_url")
    return url


async def tables_of(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    return set(names) - {"alembic_version"}


def _dialect_of(url: str) -> str:
    return make_url(url).get_dialect().name


def test_upgrade_downgrade_and_upgrade_again(fresh_url: str) -> None:
    assert current(fresh_url) is None
    upgrade(fresh_url)
    assert current(fresh_url) == HEAD
    assert asyncio.run(tables_of(fresh_url)) == TABLES | DIALECT_TABLES[_dialect_of(fresh_url)]
    downgrade(fresh_url, "0001")
    assert asyncio.run(tables_of(fresh_url)) == FIRST_TABLES
    downgrade(fresh_url, "base")
    assert current(fresh_url) is None
    assert asyncio.run(tables_of(fresh_url)) == set()
    upgrade(fresh_url)
    assert current(fresh_url) == HEAD


async def test_schema_lists_exactly_the_model_tables(database_url: str) -> None:
    assert await tables_of(database_url) == TABLES | DIALECT_TABLES[_dialect_of(database_url)]


def _drift(connection: Connection) -> Any:
    # Indexes and tables only one dialect has are not in the models (tables.DIALECT_INDEXES,
    # tables.DIALECT_TABLES); test_schema.py finds them in the catalog.
    only_here = {
        name for names in DIALECT_INDEXES[connection.dialect.name].values() for name in names
    }
    tables_only_here = DIALECT_TABLES[connection.dialect.name]

    def include(_object: Any, name: str | None, kind: str, *_: Any) -> bool:
        return not (
            (kind == "index" and name in only_here)
            or (kind == "table" and name in tables_only_here)
        )

    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": include}
    )
    return compare_metadata(context, metadata)


async def test_migrations_match_the_models(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        drift = await connection.run_sync(_drift)
    assert drift == []


async def _execute(url: str, *statements: str | tuple[str, dict[str, Any]]) -> list[Any]:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            results = []
            for statement in statements:
                sql, params = statement if isinstance(statement, tuple) else (statement, {})
                result = await connection.execute(text(sql), params)
                results.append(result.all() if result.returns_rows else None)
            return results
    finally:
        await engine.dispose()


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """The rows of one query, as plain tuples."""
    (rows,) = asyncio.run(_execute(url, sql))
    return [tuple(row) for row in rows]


NOW = datetime(2026, 1, 1, tzinfo=UTC)
ADD_USER = (
    "INSERT INTO user_account (username, username_key, email, email_key, password_hash,"
    " is_active, is_staff, is_superuser, created_at, updated_at)"
    " VALUES (:name, :name, :name, :name, 'h', true, false, false, :now, :now)"
)
ADD_PATIENT = (
    "INSERT INTO patient (created_by, name, age, gender, created_at, updated_at)"
    " VALUES (:owner, 'p', 1, 'Other', :now, :now)"
)


def test_patient_counts_are_backfilled_then_follow_inserts_and_deletes(fresh_url: str) -> None:
    upgrade(fresh_url, "0002")
    asyncio.run(
        _execute(
            fresh_url,
            *((ADD_USER, {"name": f"u{n}", "now": NOW}) for n in (1, 2, 3)),
            *((ADD_PATIENT, {"owner": owner, "now": NOW}) for owner in (1, 1, 2)),
        )
    )
    upgrade(fresh_url)

    def counts() -> list[tuple[Any, ...]]:
        return _rows(fresh_url, "SELECT user_id, patients FROM patient_count ORDER BY user_id")

    assert counts() == [(1, 2), (2, 1)]
    asyncio.run(
        _execute(
            fresh_url,
            (ADD_PATIENT, {"owner": 3, "now": NOW}),
            "DELETE FROM patient WHERE id = 1",
        )
    )
    assert counts() == [(1, 1), (2, 1), (3, 1)]
    # Deleting a user takes their patients and their count with them.
    asyncio.run(_execute(fresh_url, "DELETE FROM user_account WHERE id = 1"))
    assert counts() == [(2, 1), (3, 1)]


ADD_DOCTOR = (
    "INSERT INTO doctor (created_by, name, specialization, created_at, updated_at)"
    " VALUES (1, 'd', 's', :now, :now)"
)
ADD_MAPPING_0003 = (
    "INSERT INTO patient_doctor (patient_id, doctor_id, created_at, updated_at)"
    " VALUES (:patient, :doctor, :now, :now)"
)
ADD_MAPPING = (
    "INSERT INTO patient_doctor (owner_id, patient_id, doctor_id, created_at, updated_at)"
    " VALUES (:owner, :patient, :doctor, :now, :now)"
)


def test_mapping_owners_and_counts_are_backfilled_then_follow_changes(fresh_url: str) -> None:
    upgrade(fresh_url, "0003")
    asyncio.run(
        _execute(
            fresh_url,
            *((ADD_USER, {"name": f"u{n}", "now": NOW}) for n in (1, 2, 3)),
            *((ADD_PATIENT, {"owner": owner, "now": NOW}) for owner in (1, 1, 2)),
            *((ADD_DOCTOR, {"now": NOW}) for _ in range(2)),
            *(
                (ADD_MAPPING_0003, {"patient": patient, "doctor": doctor, "now": NOW})
                for patient, doctor in ((1, 1), (1, 2), (3, 1), (3, 2))
            ),
            "DELETE FROM patient_doctor WHERE id = 4",
        )
    )
    upgrade(fresh_url)

    def counts() -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        return (
            _rows(fresh_url, "SELECT user_id, mappings FROM mapping_count ORDER BY user_id"),
            _rows(fresh_url, "SELECT doctors FROM doctor_count"),
        )

    owners = _rows(fresh_url, "SELECT id, owner_id FROM patient_doctor ORDER BY id")
    assert owners == [(1, 1), (2, 1), (3, 2)]
    assert counts() == ([(1, 2), (2, 1)], [(2,)])

    new_mapping = {"owner": 1, "patient": 2, "doctor": 1, "now": NOW}
    asyncio.run(_execute(fresh_url, (ADD_MAPPING, new_mapping), (ADD_DOCTOR, {"now": NOW})))
    assert counts() == ([(1, 3), (2, 1)], [(3,)])
    # SQLite rebuilt the table; ids still go on after the deleted 4.
    assert _rows(fresh_url, "SELECT max(id) FROM patient_doctor") == [(5,)]
    # The owner is the patient's: any other is refused by the foreign key on the pair.
    with pytest.raises(IntegrityError):
        asyncio.run(_execute(fresh_url, (ADD_MAPPING, {**new_mapping, "owner": 2, "doctor": 2})))
    # A doctor takes its mappings, of any owner, along; deleting nothing changes nothing.
    asyncio.run(
        _execute(fresh_url, "DELETE FROM doctor WHERE id = 1", "DELETE FROM doctor WHERE id = 99")
    )
    assert counts() == ([(1, 1), (2, 0)], [(2,)])
    asyncio.run(_execute(fresh_url, "DELETE FROM patient WHERE id = 1"))
    assert counts() == ([(1, 0), (2, 0)], [(2,)])
    # Deleting a user takes their count; their doctors stay in the directory.
    asyncio.run(_execute(fresh_url, "DELETE FROM user_account WHERE id = 1"))
    assert counts() == ([(2, 0)], [(2,)])


def test_existing_records_get_a_version_and_search_keys(fresh_url: str) -> None:
    upgrade(fresh_url, "0004")
    asyncio.run(
        _execute(
            fresh_url,
            (ADD_USER, {"name": "u1", "now": NOW}),
            (ADD_PATIENT, {"owner": 1, "now": NOW}),
            "UPDATE patient SET name = 'Élodie DURAND'",
            (ADD_DOCTOR, {"now": NOW}),
            "UPDATE doctor SET name = 'Dr. Ünal', specialization = 'Cardiología'",
        )
    )
    upgrade(fresh_url)

    assert _rows(fresh_url, "SELECT version, name_key FROM patient") == [(1, "elodie durand")]
    assert _rows(fresh_url, "SELECT version, name_key, specialization_key FROM doctor") == [
        (1, "dr. unal", "cardiologia")
    ]
    downgrade(fresh_url, "0004")
    assert _rows(fresh_url, "SELECT count(*) FROM patient") == [(1,)]


def test_existing_accounts_get_their_login_names_the_earlier_keeping_a_clash(
    fresh_url: str,
) -> None:
    upgrade(fresh_url, "0006")
    add_user = (
        "INSERT INTO user_account (username, username_key, email, email_key, password_hash,"
        " is_active, is_staff, is_superuser, created_at, updated_at)"
        " VALUES (:username, :username, :email, :email, 'h', true, false, false, :now, :now)"
    )
    asyncio.run(
        _execute(
            fresh_url,
            # The second took the first's username as its email, before the login names.
            (add_user, {"username": "ann@x.org", "email": "a1@x.org", "now": NOW}),
            (add_user, {"username": "bob", "email": "ann@x.org", "now": NOW}),
        )
    )
    upgrade(fresh_url)

    owners = dict(_rows(fresh_url, "SELECT key, user_id FROM login_name"))
    assert owners == {
        login_name_key("ann@x.org"): 1,
        login_name_key("a1@x.org"): 1,
        login_name_key("bob"): 2,
    }
    # Deleting an account frees its names.
    asyncio.run(_execute(fresh_url, "DELETE FROM user_account WHERE id = 1"))
    assert _rows(fresh_url, "SELECT user_id FROM login_name") == [(2,)]


@pytest.mark.postgres
def test_name_piece_counts_are_backfilled_then_follow_changes(throwaway_postgres_url: str) -> None:
    url = throwaway_postgres_url
    upgrade(url, "0009")
    asyncio.run(
        _execute(
            url,
            *((ADD_USER, {"name": f"u{n}", "now": NOW}) for n in (1, 2)),
            *((ADD_PATIENT, {"owner": owner, "now": NOW}) for owner in (1, 1, 2)),
            "UPDATE patient SET name_key = CASE id WHEN 1 THEN 'ada' WHEN 2 THEN 'adad'"
            " ELSE 'ada' END",
        )
    )
    upgrade(url)

    def counts() -> list[tuple[Any, ...]]:
        return _rows(url, "SELECT piece, patients FROM patient_piece_count ORDER BY 1")

    # "adad" has "ada" and "dad": a piece counts patients, not occurrences.
    assert counts() == [("1 ada", 2), ("1 dad", 1), ("2 ada", 1)]
    asyncio.run(
        _execute(
            url,
            "UPDATE patient SET name_key = 'dada' WHERE id = 1",
            "UPDATE patient SET age = 2 WHERE id = 2",  # no change of name: no count moves
            "DELETE FROM patient WHERE id = 2",
        )
    )
    assert counts() == [("1 ada", 1), ("1 dad", 1), ("2 ada", 1)]
    # Deleting a user takes their patients and their counts with them.
    asyncio.run(_execute(url, "DELETE FROM user_account WHERE id = 1"))
    assert counts() == [("2 ada", 1)]
    downgrade(url, "0009")
    assert "patient_piece_count" not in asyncio.run(tables_of(url))
