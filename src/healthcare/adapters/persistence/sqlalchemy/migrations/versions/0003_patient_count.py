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
# PostgreSQL counts once per statement, from its transition tables: a row-level trigger
# would update one owner's row once per row of a bulk load, and inside one transaction
# every one of those updates walks the versions the earlier ones left behind.
_POSTGRES = (
    """
    CREATE FUNCTION patient_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO patient_count (user_id, patients)
        SELECT created_by, count(*) FROM added GROUP BY created_by
        ON CONFLICT (user_id) DO UPDATE SET patients = patient_count.patients + excluded.patients;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION patient_count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE patient_count SET patients = patients - gone.n
        FROM (SELECT created_by, count(*) AS n FROM removed GROUP BY created_by) AS gone
        WHERE patient_count.user_id = gone.created_by;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER patient_count_added AFTER INSERT ON patient
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION patient_count_added()
    """,
    """
    CREATE TRIGGER patient_count_removed AFTER DELETE ON patient
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION patient_count_removed()
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
        for name in ("patient_count_added", "patient_count_removed"):
            op.execute(f"DROP TRIGGER {name} ON patient")
            op.execute(f"DROP FUNCTION {name}()")
    else:
        op.execute("DROP TRIGGER patient_count_insert")
        op.execute("DROP TRIGGER patient_count_delete")
    op.drop_table("patient_count")
