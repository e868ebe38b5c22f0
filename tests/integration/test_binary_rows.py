"""Rows come back from PostgreSQL in its binary format (transaction.py): a column of a type
psycopg has no binary loader for would come back as bytes instead of its value."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.pq import Format
from sqlalchemy import make_url

pytestmark = pytest.mark.postgres

_COLUMNS = """
    SELECT c.relname, a.attname, a.atttypid, format_type(a.atttypid, NULL)
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0
      AND NOT a.attisdropped
"""


def test_every_column_at_head_has_a_binary_loader(postgres_url: str) -> None:
    libpq_url = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(libpq_url) as connection:
        columns = connection.execute(_COLUMNS).fetchall()
        adapters = connection.adapters
        unreadable = [
            f"{table}.{column} ({type_name})"
            for table, column, oid, type_name in columns
            if adapters.get_loader(oid, Format.BINARY) is None
        ]
    assert len(columns) > 40  # every table of the schema, not an empty search path
    assert not unreadable


def test_a_type_without_a_binary_loader_is_found(postgres_url: str) -> None:
    """The check above can fail: an enum type has no binary loader until registered."""
    libpq_url = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(libpq_url) as connection:
        connection.execute("CREATE TYPE pg_temp.mood AS ENUM ('calm')")
        [oid] = connection.execute("SELECT 'pg_temp.mood'::regtype::oid").fetchone() or [0]
        assert connection.adapters.get_loader(oid, Format.BINARY) is None
        assert connection.execute("SELECT 'calm'::pg_temp.mood", binary=True).fetchone() == (
            b"calm",
        )
