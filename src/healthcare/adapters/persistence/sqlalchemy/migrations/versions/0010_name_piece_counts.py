"""A three-letter name search at scale: its total from a count row, its page from an index.

With 1,000,000 patients over 100 owners, a three-letter search found its owner's candidates
in the pieces index of 0007 but then read every one of them from the table, to count them
and to sort them by id: 420 to 1,255 rows on as many table pages (the owner's rows are
spread over the whole table), 2 ms when they were in shared buffers and 4-11 ms when not,
against 0.2 ms for the unfiltered page. PostgreSQL 15 cannot count them from the GIN index
alone: GIN has no index-only scans, and a bitmap scan read every heap page even with the
visibility map all set (measured). So on PostgreSQL:

- patient_piece_count: per owner and name piece (as patient_name_grams makes them, "7 ada"),
  how many of the owner's patients have it, kept by triggers as patient_count is. A search
  of exactly one piece (three letters) matches exactly the patients that have the piece, so
  its total is one row.
- ix_patient_created_by_id_name_key: the owner's (id, name key) in id order, so the page's
  first matches are found by reading the owner's keys in order, without the table, until
  the page is full.

Inserts and deletes count once per statement from their transition tables; a change of
name (or owner) counts per row, only when the key changes. Every change of an owner's counts
happens under the lock of the owner's patient_count row (the patient_count triggers fire
first, by name; the rename trigger takes it), so two writers never lock piece rows in
opposite orders. Decrements only UPDATE, as patient_count's do: a user's deletion may
remove the count rows before the patients.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The pieces of the rows of ``rows`` (a transition table), counted per owner and piece.
_PIECES_OF = """
    SELECT created_by, piece, count(*) AS n
    FROM {rows}, unnest(patient_name_grams(created_by, name_key)) AS piece
    GROUP BY created_by, piece
"""
_ADD = """
    INSERT INTO patient_piece_count (owner_id, piece, patients)
    {pieces} ORDER BY created_by, piece
    ON CONFLICT (owner_id, piece)
    DO UPDATE SET patients = patient_piece_count.patients + excluded.patients
"""
_UP = (
    """
    CREATE TABLE patient_piece_count (
        owner_id bigint NOT NULL,
        piece text COLLATE "C" NOT NULL,
        patients bigint NOT NULL,
        CONSTRAINT pk_patient_piece_count PRIMARY KEY (owner_id, piece),
        CONSTRAINT fk_patient_piece_count_owner_id FOREIGN KEY (owner_id)
            REFERENCES user_account (id) ON DELETE CASCADE
    )
    """,
    # No patient may come or go between the count and the triggers that follow it.
    "LOCK TABLE patient IN SHARE ROW EXCLUSIVE MODE",
    _ADD.format(pieces=_PIECES_OF.format(rows="patient")),
    f"""
    CREATE FUNCTION patient_piece_count_added() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        {_ADD.format(pieces=_PIECES_OF.format(rows="added"))};
        RETURN NULL;
    END
    $$
    """,
    f"""
    CREATE FUNCTION patient_piece_count_removed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE patient_piece_count SET patients = patients - gone.n
        FROM ({_PIECES_OF.format(rows="removed")}) AS gone
        WHERE owner_id = gone.created_by AND patient_piece_count.piece = gone.piece;
        RETURN NULL;
    END
    $$
    """,  # noqa: S608 (this module's own text, no input)
    """
    CREATE FUNCTION patient_piece_count_renamed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM 1 FROM patient_count WHERE user_id IN (OLD.created_by, NEW.created_by)
        ORDER BY user_id FOR NO KEY UPDATE;
        INSERT INTO patient_piece_count (owner_id, piece, patients)
        SELECT owner, piece, sum(delta) FROM (
            SELECT NEW.created_by AS owner, piece, 1 AS delta
            FROM unnest(patient_name_grams(NEW.created_by, NEW.name_key)) AS piece
            UNION ALL
            SELECT OLD.created_by, piece, -1
            FROM unnest(patient_name_grams(OLD.created_by, OLD.name_key)) AS piece
        ) AS change
        GROUP BY owner, piece HAVING sum(delta) <> 0 ORDER BY owner, piece
        ON CONFLICT (owner_id, piece)
        DO UPDATE SET patients = patient_piece_count.patients + excluded.patients;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER patient_piece_count_added AFTER INSERT ON patient
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION patient_piece_count_added()
    """,
    """
    CREATE TRIGGER patient_piece_count_removed AFTER DELETE ON patient
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION patient_piece_count_removed()
    """,
    """
    CREATE TRIGGER patient_piece_count_renamed AFTER UPDATE OF name_key, created_by ON patient
    FOR EACH ROW
    WHEN (OLD.name_key IS DISTINCT FROM NEW.name_key OR OLD.created_by <> NEW.created_by)
    EXECUTE FUNCTION patient_piece_count_renamed()
    """,
    "CREATE INDEX ix_patient_created_by_id_name_key ON patient (created_by, id) INCLUDE (name_key)",
)
_TRIGGERS = (
    "patient_piece_count_added",
    "patient_piece_count_removed",
    "patient_piece_count_renamed",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite scans the owner's rows for a search (see repositories.py)
    for statement in _UP:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_patient_created_by_id_name_key")
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON patient")
        op.execute(f"DROP FUNCTION {name}()")
    op.execute("DROP TABLE patient_piece_count")
