"""Plans that must not depend on how the data is spread: PostgreSQL, as the pooled sessions
plan (generic plans, sqlalchemy/pool.py), on statistics made skewed on purpose."""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from sqlalchemy import make_url
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import Select

from healthcare.adapters.persistence.sqlalchemy import repositories, upgrade
from healthcare.adapters.persistence.sqlalchemy.pool import _session_settings

pytestmark = pytest.mark.postgres

HEAVY_PATIENTS, THEIR_DOCTORS, LIGHT_PATIENTS = 20, 3000, 200


def _prepared(statement: Select[Any]) -> tuple[str, list[str]]:
    """The statement with $1, $2... for PREPARE, and its parameters' names in that order."""
    names: list[str] = []

    def number(found: re.Match[str]) -> str:
        if found[1] not in names:
            names.append(found[1])
        return f"${names.index(found[1]) + 1}"

    sql = str(statement.compile(dialect=postgresql.psycopg.dialect()))  # type: ignore[no-untyped-call]
    return re.sub(r"%\((\w+)\)s", number, sql), names


def _skewed(connection: psycopg.Connection[Any]) -> None:
    """One owner: a few patients with thousands of doctors each, many with two. Most rows
    belong to the few, so the average patient the generic plan is costed with is a heavy
    one."""
    connection.execute(
        "INSERT INTO user_account (username, username_key, email, email_key, password_hash,"
        " is_active, is_staff, is_superuser, created_at, updated_at)"
        " VALUES ('u', 'u', 'u@example.org', 'u@example.org', 'h', true, false, false,"
        " now(), now())"
    )
    connection.execute(
        "INSERT INTO doctor (created_by, name, specialization, created_at, updated_at)"
        " SELECT 1, 'd', 's', now(), now() FROM generate_series(1, %s::int)",
        (THEIR_DOCTORS,),
    )
    connection.execute(
        "INSERT INTO patient (created_by, name, age, gender, created_at, updated_at)"
        " SELECT 1, 'p', 1, 'Other', now(), now() FROM generate_series(1, %s::int)",
        (HEAVY_PATIENTS + LIGHT_PATIENTS,),
    )
    add = (
        "INSERT INTO patient_doctor (owner_id, patient_id, doctor_id, created_at, updated_at)"
        " SELECT 1, p, d, now(), now() FROM generate_series(%s::int, %s::int) AS p,"
        " generate_series(1, %s::int) AS d"
    )
    connection.execute(add, (1, HEAVY_PATIENTS, THEIR_DOCTORS))
    connection.execute(add, (HEAVY_PATIENTS + 1, HEAVY_PATIENTS + LIGHT_PATIENTS, 2))
    connection.execute("ANALYZE")


@pytest.mark.parametrize(
    "statement",
    [repositories._LIST_PATIENT_MAPPINGS, repositories._LIST_PATIENT_DOCTORS],
    ids=["mappings", "doctors"],
)
def test_a_page_of_a_patients_mappings_reads_its_own_rows_only(
    throwaway_postgres_url: str, statement: Select[Any]
) -> None:
    """A patient's page is a range of (patient_id, id) in order. Without that index the
    generic plan walked the primary key and filtered: the newest patient's page of two read
    744 buffers here (every row of the table), 185,638 on a table of 188,000 mappings."""
    upgrade(throwaway_postgres_url)
    libpq_url = make_url(throwaway_postgres_url).set(drivername="postgresql")
    sql, names = _prepared(statement)
    newest = HEAVY_PATIENTS + LIGHT_PATIENTS  # its rows are the last of the primary key
    values = {"b_patient_id": newest, "b_owner_id": 1, "limit": 100, "offset": 0}
    with psycopg.connect(libpq_url.render_as_string(False), autocommit=True) as connection:
        _skewed(connection)
        connection.execute(_session_settings(5000, 2000))
        connection.execute(f"PREPARE page AS {sql}".encode())
        arguments = ", ".join(str(values[name]) for name in names)
        row = connection.execute(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE page({arguments})".encode()
        ).fetchone()
        rows = connection.execute(f"EXECUTE page({arguments})".encode()).fetchall()
    assert row is not None
    plan = row[0][0]["Plan"]
    assert len(rows) == 2
    assert plan["Shared Hit Blocks"] + plan["Shared Read Blocks"] < 60, plan
