"""At head, the database holds every object the schema counts on, read from its catalog.

The models name every index and constraint; the migrations also make triggers (the audit
trail's append-only guard, the count rows), which no model describes and which a batch
rebuild on SQLite drops silently. Both lists are compared with what the database says it has.
"""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from healthcare.adapters.persistence.sqlalchemy.tables import (
    DIALECT_INDEXES,
    TRIGGERS,
    metadata,
)

Names = dict[str, set[str]]


def _expected_indexes_and_constraints(dialect: str) -> Names:
    expected: Names = {}
    for table in metadata.sorted_tables:
        expected[table.name] = {str(index.name) for index in table.indexes} | {
            str(constraint.name) for constraint in table.constraints
        }
    for name, names in DIALECT_INDEXES[dialect].items():
        expected.setdefault(name, set()).update(names)
    return expected


def _catalog(connection: Connection) -> tuple[Names, Names]:
    """(indexes and constraints, triggers) by table, as the database lists them."""
    found: Names = defaultdict(set)
    triggers: Names = defaultdict(set)
    if connection.dialect.name == "postgresql":
        for table, name in connection.execute(
            text(
                "SELECT conrelid::regclass::text, conname FROM pg_constraint"
                " WHERE connamespace = 'public'::regnamespace"
                " UNION ALL SELECT tablename, indexname FROM pg_indexes"
                " WHERE schemaname = 'public'"
            )
        ):
            found[table].add(name)
        for table, name in connection.execute(
            text("SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal")
        ):
            triggers[table].add(name)
        return found, triggers
    inspector = inspect(connection)
    for table in inspector.get_table_names():
        primary_key = inspector.get_pk_constraint(table)
        names = {primary_key.get("name")}
        model = metadata.tables.get(table)
        if model is not None and primary_key["constrained_columns"] == [
            column.name for column in model.primary_key.columns
        ]:
            # An AUTOINCREMENT rowid key is declared inline, where SQLite keeps no name.
            names.add(str(model.primary_key.name))
        for kind in (
            inspector.get_unique_constraints,
            inspector.get_foreign_keys,
            inspector.get_check_constraints,
            inspector.get_indexes,
        ):
            names |= {item.get("name") for item in kind(table)}
        found[table] = {name for name in names if name}
    for table, name in connection.execute(
        text("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
    ):
        triggers[table].add(name)
    return found, triggers


async def test_every_named_index_and_constraint_exists(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        found, _ = await connection.run_sync(_catalog)

    expected = _expected_indexes_and_constraints(engine.dialect.name)
    missing = {
        table: names - found.get(table, set())
        for table, names in expected.items()
        if names - found.get(table, set())
    }
    assert missing == {}
    assert sum(map(len, expected.values())) >= 25  # not empty


async def test_exactly_the_expected_triggers_exist(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        _, triggers = await connection.run_sync(_catalog)

    expected = TRIGGERS[engine.dialect.name]
    assert {table: frozenset(names) for table, names in triggers.items()} == expected
