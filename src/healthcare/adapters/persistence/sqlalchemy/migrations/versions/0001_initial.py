"""Initial schema: users, patients, doctors, their mappings, refresh sessions.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Integer ids. PostgreSQL: BIGSERIAL, whose sequence "<table>_id_seq" is the one the models
# (advanced-alchemy's BigIntPrimaryKey) name. SQLite: INTEGER, as only "INTEGER PRIMARY KEY"
# makes the column the rowid.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# On SQLite, AUTOINCREMENT stops ids of deleted rows from being reused.
NO_ID_REUSE = {"sqlite_autoincrement": True}


def _timestamps() -> list[sa.Column[datetime]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "user_account",
        sa.Column("id", ID, nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("username_key", sa.String(length=600), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("email_key", sa.String(length=1016), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_staff", sa.Boolean(), nullable=False),
        sa.Column("is_superuser", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_user_account"),
        sa.UniqueConstraint("username_key", name="uq_user_account_username_key"),
        sa.UniqueConstraint("email_key", name="uq_user_account_email_key"),
        **NO_ID_REUSE,
    )
    op.create_table(
        "doctor",
        sa.Column("id", ID, nullable=False),
        sa.Column("created_by", ID, nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("specialization", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["created_by"], ["user_account.id"], name="fk_doctor_created_by", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_doctor"),
        **NO_ID_REUSE,
    )
    op.create_index("ix_doctor_created_by", "doctor", ["created_by"])
    op.create_table(
        "patient",
        sa.Column("id", ID, nullable=False),
        sa.Column("created_by", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("age", sa.Integer(), nullable=False),
        sa.Column("gender", sa.String(length=16), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("address", sa.String(length=1000), nullable=True),
        sa.Column("notes", sa.String(length=10000), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["created_by"], ["user_account.id"], name="fk_patient_created_by", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_patient"),
        **NO_ID_REUSE,
    )
    op.create_index("ix_patient_created_by_id", "patient", ["created_by", "id"])
    op.create_table(
        "patient_doctor",
        sa.Column("id", ID, nullable=False),
        sa.Column("patient_id", ID, nullable=False),
        sa.Column("doctor_id", ID, nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name="fk_patient_doctor_patient_id", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["doctor.id"], name="fk_patient_doctor_doctor_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_patient_doctor"),
        sa.UniqueConstraint("patient_id", "doctor_id", name="uq_patient_doctor_pair"),
        **NO_ID_REUSE,
    )
    op.create_index("ix_patient_doctor_doctor_id", "patient_doctor", ["doctor_id"])
    op.create_table(
        "refresh_session",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("current_jti", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name="fk_refresh_session_user_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_refresh_session"),
    )
    op.create_index("ix_refresh_session_user_id", "refresh_session", ["user_id"])


def downgrade() -> None:
    # Indexes and (on PostgreSQL) the serial sequences go with their tables.
    op.drop_table("refresh_session")
    op.drop_table("patient_doctor")
    op.drop_table("patient")
    op.drop_table("doctor")
    op.drop_table("user_account")
