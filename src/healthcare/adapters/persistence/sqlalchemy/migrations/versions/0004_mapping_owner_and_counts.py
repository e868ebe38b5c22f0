"""A mapping carries its patient's owner; owners' mappings and the directory are counted.

Listing a user's mappings (GET /api/mappings/) joined every mapping to its patient to find
the owner's, then sorted them: on 200,000 mappings a page took 20 ms, whatever the page,
and grew with the whole table. With the owner on the mapping, a page is a range of the
(owner_id, id) index, and its total one row of ``mapping_count``. The doctors' page reads
its total from ``doctor_count`` instead of counting the directory.

The owner is not free to drift from the patient's: the mapping's foreign key is the pair
(owner_id, patient_id) against the patient's (created_by, id), which therefore becomes a
unique index (it was a plain one on the same columns). A patient never changes owner.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# patient_doctor is rebuilt on SQLite; it keeps never reusing ids (see tables.py).
_NO_ID_REUSE = {"sqlite_autoincrement": True}

# PostgreSQL's trigger functions. As in 0003: decrements only UPDATE, and PostgreSQL counts
# once per statement.
_POSTGRES_FUNCTION_DEFINITIONS = (
    """
    CREATE FUNCTION mapping_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO mapping_count (user_id, mappings)
        SELECT owner_id, count(*) FROM added GROUP BY owner_id
        ON CONFLICT (user_id) DO UPDATE SET mappings = mapping_count.mappings + excluded.mappings;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION mapping_count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE mapping_count SET mappings = mappings - gone.n
        FROM (SELECT owner_id, count(*) AS n FROM removed GROUP BY owner_id) AS gone
        WHERE mapping_count.user_id = gone.owner_id;
        RETURN NULL;
    END
    $$
    """,
    # A statement trigger also fires for a statement that touched no row (a delete of a
    # missing doctor): the single count row is written, and locked, only for a change.
    """
    CREATE FUNCTION doctor_count_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        change bigint;
    BEGIN
        IF TG_OP = 'INSERT' THEN
            SELECT count(*) INTO change FROM added;
        ELSE
            SELECT -count(*) INTO change FROM removed;
        END IF;
        IF change <> 0 THEN
            UPDATE doctor_count SET doctors = doctors + change;
        END IF;
        RETURN NULL;
    END
    $$
    """,
)
# PostgreSQL's statement triggers: name, table, event, function. An insert's rows are the
# transition table ``added``, a delete's ``removed``.
_POSTGRES_TRIGGERS = (
    ("mapping_count_added", "patient_doctor", "INSERT", "mapping_count_added"),
    ("mapping_count_removed", "patient_doctor", "DELETE", "mapping_count_removed"),
    ("doctor_count_added", "doctor", "INSERT", "doctor_count_changed"),
    ("doctor_count_removed", "doctor", "DELETE", "doctor_count_changed"),
)
_POSTGRES_FUNCTIONS = ("mapping_count_added", "mapping_count_removed", "doctor_count_changed")
# SQLite's row triggers: name, table, event, body.
_SQLITE_TRIGGERS = (
    (
        "mapping_count_insert",
        "patient_doctor",
        "INSERT",
        "INSERT INTO mapping_count (user_id, mappings) VALUES (NEW.owner_id, 1)"
        " ON CONFLICT (user_id) DO UPDATE SET mappings = mappings + 1",
    ),
    (
        "mapping_count_delete",
        "patient_doctor",
        "DELETE",
        "UPDATE mapping_count SET mappings = mappings - 1 WHERE user_id = OLD.owner_id",
    ),
    ("doctor_count_insert", "doctor", "INSERT", "UPDATE doctor_count SET doctors = doctors + 1"),
    ("doctor_count_delete", "doctor", "DELETE", "UPDATE doctor_count SET doctors = doctors - 1"),
)


def _create_triggers(postgres: bool) -> None:
    if postgres:
        for statement in _POSTGRES_FUNCTION_DEFINITIONS:
            op.execute(statement)
        for name, table, event, function in _POSTGRES_TRIGGERS:
            rows = "NEW TABLE AS added" if event == "INSERT" else "OLD TABLE AS removed"
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING {rows}"
                f" FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )
    else:
        for name, table, event, body in _SQLITE_TRIGGERS:
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {body}; END")


def _drop_triggers(postgres: bool) -> None:
    if postgres:
        for name, table, _, _ in _POSTGRES_TRIGGERS:
            op.execute(f"DROP TRIGGER {name} ON {table}")
        for function in _POSTGRES_FUNCTIONS:
            op.execute(f"DROP FUNCTION {function}()")
    else:
        for name, *_ in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # Nothing may come or go between the backfills and the triggers that follow them.
        op.execute("LOCK TABLE patient, doctor, patient_doctor IN SHARE ROW EXCLUSIVE MODE")

    # The owner and id of a patient, unique (the id alone is), so a mapping can refer to it.
    op.create_index("uq_patient_created_by_id", "patient", ["created_by", "id"], unique=True)
    op.drop_index("ix_patient_created_by_id", table_name="patient")

    last_id = None if postgres else _sqlite_last_id("patient_doctor")
    op.add_column("patient_doctor", sa.Column("owner_id", ID, nullable=True))
    op.execute(
        "UPDATE patient_doctor SET owner_id ="
        " (SELECT created_by FROM patient WHERE patient.id = patient_doctor.patient_id)"
    )
    with op.batch_alter_table("patient_doctor", table_kwargs=_NO_ID_REUSE) as batch:
        batch.alter_column("owner_id", existing_type=ID, nullable=False)
        batch.drop_constraint("fk_patient_doctor_patient_id", type_="foreignkey")
        batch.create_foreign_key(
            "fk_patient_doctor_patient",
            "patient",
            ["owner_id", "patient_id"],
            ["created_by", "id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_patient_doctor_owner_id_id", ["owner_id", "id"])
    if last_id is not None:
        _keep_sequence("patient_doctor", last_id)

    op.create_table(
        "mapping_count",
        sa.Column("user_id", ID, nullable=False),
        sa.Column("mappings", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name="fk_mapping_count_user_id", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_mapping_count"),
    )
    op.execute(
        "INSERT INTO mapping_count (user_id, mappings)"
        " SELECT owner_id, count(*) FROM patient_doctor GROUP BY owner_id"
    )
    op.create_table(
        "doctor_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("doctors", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_doctor_count_one_row"),
        sa.PrimaryKeyConstraint("id", name="pk_doctor_count"),
    )
    op.execute("INSERT INTO doctor_count (id, doctors) SELECT 1, count(*) FROM doctor")
    _create_triggers(postgres)


def _sqlite_last_id(table: str) -> int | None:
    """SQLite rebuilds a table to alter it, and the copy's id sequence would restart at the
    highest id left: a row deleted from the top would give its id away again. This is the
    sequence to keep (see _keep_sequence)."""
    last_id: int | None = op.get_bind().scalar(
        sa.text("SELECT seq FROM sqlite_sequence WHERE name = :table").bindparams(table=table)
    )
    return last_id


def _keep_sequence(table: str, last_id: int) -> None:
    """SQLite: the rebuilt ``table`` goes on numbering after ``last_id``, as before."""
    for statement in (
        "UPDATE sqlite_sequence SET seq = max(seq, :last) WHERE name = :table",
        "INSERT INTO sqlite_sequence (name, seq) SELECT :table, :last"
        " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = :table)",
    ):
        op.execute(sa.text(statement).bindparams(last=last_id, table=table))


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    last_id = None if postgres else _sqlite_last_id("patient_doctor")
    _drop_triggers(postgres)
    op.drop_table("doctor_count")
    op.drop_table("mapping_count")
    with op.batch_alter_table("patient_doctor", table_kwargs=_NO_ID_REUSE) as batch:
        batch.drop_index("ix_patient_doctor_owner_id_id")
        batch.drop_constraint("fk_patient_doctor_patient", type_="foreignkey")
        batch.create_foreign_key(
            "fk_patient_doctor_patient_id", "patient", ["patient_id"], ["id"], ondelete="CASCADE"
        )
        batch.drop_column("owner_id")
    if last_id is not None:
        _keep_sequence("patient_doctor", last_id)
    op.create_index("ix_patient_created_by_id", "patient", ["created_by", "id"])
    op.drop_index("uq_patient_created_by_id", table_name="patient")
