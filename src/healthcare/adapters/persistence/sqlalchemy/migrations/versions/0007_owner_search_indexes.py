"""Indexes for searching and filtering one owner's patients at scale.

Every patient query names its owner, and with 1,000,000 patients over 100 owners the global
trigram index of 0006 made a three-letter search read tens of thousands of index entries
(every owner's matches) and AND them with the owner's 10,000: 20-45 ms a page. Replaced on
PostgreSQL by a GIN index of the owner's own three-letter pieces of each name key
("7 ada" for patient of user 7 whose key contains "ada"), so a search reads the few hundred
entries of its owner's matches. The pieces are computed by an immutable SQL function, which
the queries call with the same arguments (the repository computes the search's own pieces,
sqlalchemy/repositories.py). Without GIN's pending list (fastupdate off): a write adds its
entries to the index itself, since every search would otherwise read the whole list of
entries not yet merged (4,527 after a few seconds of the bench's updates, 243 pages: a
search went from 0.2 to 1.5 ms of the database's time).

Both databases get a B-tree on (created_by, gender, age, id): a page filtered by gender and
an age range, ordered by age, is a range of it, and its count an index-only scan.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Distinct code-point trigrams of the key, each prefixed with the owner's id and a space.
GRAMS_FUNCTION = """
CREATE FUNCTION patient_name_grams(owner bigint, name_key text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT owner::text || ' ' || substr(name_key, i, 3)), '{}')
  FROM generate_series(1, length(name_key) - 2) AS i
$$
"""


def upgrade() -> None:
    op.create_index(
        "ix_patient_created_by_gender_age", "patient", ["created_by", "gender", "age", "id"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_patient_name_key_trgm")
        op.execute(GRAMS_FUNCTION)
        op.execute(
            "CREATE INDEX ix_patient_owner_name_grams ON patient"
            " USING gin (patient_name_grams(created_by, name_key)) WITH (fastupdate = off)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_patient_owner_name_grams")
        op.execute("DROP FUNCTION patient_name_grams(bigint, text)")
        op.execute(
            "CREATE INDEX ix_patient_name_key_trgm ON patient USING gin (name_key gin_trgm_ops)"
        )
    op.drop_index("ix_patient_created_by_gender_age", "patient")
