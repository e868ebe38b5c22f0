"""Login names: one row per name an account signs in with (its username and its email),
keyed by what the name looks like (healthcare.adapters.lookalikes), so that no two accounts
can have names a reader cannot tell apart, nor one's username be another's email. The
primary key enforces it, under concurrent registrations too, on both databases.

Existing accounts get their rows in the order they registered; a name that looks like one
an earlier account already has is left out (and counted in a warning): that account still
signs in with its exact name, and nobody can register a third look-alike.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 00:00:00
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from healthcare.adapters.lookalikes import login_name_key

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KEY_LENGTH = 64  # a SHA-256 in hex
BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "login_name",
        sa.Column("key", sa.String(length=KEY_LENGTH), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name="fk_login_name_user_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("key", name="pk_login_name"),
    )
    op.create_index("ix_login_name_user_id", "login_name", ["user_id"])
    connection = op.get_bind()
    users = connection.execute(sa.text("SELECT id, username, email FROM user_account ORDER BY id"))
    owners: dict[str, int] = {}
    left_out = 0
    for user_id, username, email in users:
        for key in dict.fromkeys((login_name_key(username), login_name_key(email))):
            if owners.setdefault(key, user_id) != user_id:
                left_out += 1
    if left_out:
        log.warning("%d login names look like an earlier account's and were left out", left_out)
    rows = [{"key": key, "user_id": user_id} for key, user_id in owners.items()]
    insert = sa.text("INSERT INTO login_name (key, user_id) VALUES (:key, :user_id)")
    for start in range(0, len(rows), BATCH):
        connection.execute(insert, rows[start : start + BATCH])


def downgrade() -> None:
    op.drop_table("login_name")
