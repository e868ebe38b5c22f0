"""Each user's number of patients, kept by triggers, so a page's total costs one row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Decrements only UPDATE: when a user is deleted, the cascade may have removed their count
# row before their patients, and an upsert would then recreate it for a missing user.
_POSTGRES = (
    """
    CREATE FUNCTION patient_count_follow() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO patient_count (user_id, patients) VALUES (NEW.created_by, 1)
            ON CONFLICT (user_id) DO UPDATE SET patients = patient_count.patients + 1;
        ELSE
            UPDATE patient_count SET patients = patients - 1 WHERE user_id = OLD.created_by;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER patient_count_follow AFTER INSERT OR DELETE ON patient
    FOR EACH ROW EXECUTE FUNCTION patient_count_follow()
    """,
)
_SQLITE = (
    """
    CREATE TRIGGER patient_count_insert AFTER INSERT ON patient
    BEGIN
        INSERT INTO patient_count (user_id, patients) VALUES (NEW.created_by, 1)
        ON CONFLICT (user_id) DO UPDATE SET patients = patients + 1;
    END
    """,
    """
    CREATE TRIGGER patient_count_delete AFTER DELETE ON patient
    BEGIN
        UPDATE patient_count SET patients = patients - 1 WHERE user_id = OLD.created_by;
    END
    """,
)


def upgrade() -> None:
    op.create_table(
        "patient_count",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("patients", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name="fk_patient_count_user_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_patient_count"),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # No patient may come or go between the count and the trigger that follows it.
        op.execute("LOCK TABLE patient IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        "INSERT INTO patient_count (user_id, patients) "
        "SELECT created_by, count(*) FROM patient GROUP BY created_by"
    )
    for statement in _POSTGRES if postgres else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER patient_count_follow ON patient")
        op.execute("DROP FUNCTION patient_count_follow()")
    else:
        op.execute("DROP TRIGGER patient_count_insert")
        op.execute("DROP TRIGGER patient_count_delete")
    op.drop_table("patient_count")
