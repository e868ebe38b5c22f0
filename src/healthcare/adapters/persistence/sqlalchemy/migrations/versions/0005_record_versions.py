"""A version on every patient and doctor, bumped by each change (optimistic concurrency).

Added in place on both databases (no batch mode: SQLite adds a column without rebuilding the
table, so the count triggers stay). Existing rows start at version 1.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VERSIONED = ("patient", "doctor")


def upgrade() -> None:
    for table in VERSIONED:
        op.add_column(
            table,
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")),
        )


def downgrade() -> None:
    for table in VERSIONED:
        # SQLite drops a column in place since 3.35 (no rebuild, so the triggers stay).
        op.drop_column(table, "version")
