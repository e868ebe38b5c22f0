"""Search keys: names as they are searched and ordered (no case, no accents), and on
PostgreSQL a trigram index, so that a name fragment is found without reading every row.

The keys are computed in Python (healthcare.domain.listing.search_key), so the three
adapters agree on every letter; existing rows are filled in here. Columns are added in
place (no batch mode: SQLite keeps the count triggers).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from healthcare.domain.listing import search_key
from healthcare.domain.rules import KEY_GROWTH, NAME_MAX

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Sorted by code point on PostgreSQL too (collation "C"), as SQLite's BINARY sorts.
KEY = sa.String(NAME_MAX * KEY_GROWTH).with_variant(
    sa.String(NAME_MAX * KEY_GROWTH, collation="C"), "postgresql"
)
# (table, key column, the column it is computed from)
KEYS = (
    ("patient", "name_key", "name"),
    ("doctor", "name_key", "name"),
    ("doctor", "specialization_key", "specialization"),
)
BATCH = 5000


def upgrade() -> None:
    for table, key, _ in KEYS:
        op.add_column(table, sa.Column(key, KEY, nullable=False, server_default=""))
    connection = op.get_bind()
    for table, key, source in KEYS:
        rows = connection.execute(sa.text(f"SELECT id, {source} FROM {table}")).all()  # noqa: S608
        update = sa.text(f"UPDATE {table} SET {key} = :key WHERE id = :id")  # noqa: S608
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            connection.execute(update, [{"id": id_, "key": search_key(v)} for id_, v in batch])
    if connection.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_patient_name_key_trgm ON patient USING gin (name_key gin_trgm_ops)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_patient_name_key_trgm")
    for table, key, _ in reversed(KEYS):
        op.drop_column(table, key)
