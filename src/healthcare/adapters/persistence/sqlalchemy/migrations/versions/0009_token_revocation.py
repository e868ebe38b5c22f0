"""Token revocations: per user, the time before which their access tokens are refused
(a deactivation or a password change). Every worker keeps them in memory and learns new
ones from this table (healthcare.adapters.persistence.sqlalchemy.revocation_feed).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "token_revocation",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name="fk_token_revocation_user_id",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_token_revocation"),
    )
    op.create_index("ix_token_revocation_not_before", "token_revocation", ["not_before"])


def downgrade() -> None:
    op.drop_table("token_revocation")
