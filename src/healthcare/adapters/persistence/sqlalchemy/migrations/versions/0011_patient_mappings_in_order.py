"""A patient's mappings in order of assignment, read as a range of one index.

A patient's page of mappings (and of doctors) is ``WHERE patient_id = $1 ORDER BY id LIMIT
$n``. The pair index (patient_id, doctor_id) finds the rows but not in that order, so a
plan could instead walk the primary key in order and filter by patient. The sessions use
generic plans (sqlalchemy/pool.py), which are costed with the average patient: once some
patients have thousands of doctors, that average made the primary-key walk look cheaper,
and every patient with a few mappings paid for a walk of the whole table. Measured on
188,000 mappings (a few patients with 6,050 each): 185,638 buffers and 25-30 ms for a page
of 3, against 29 buffers and 0.05 ms by the pair index; with millions of mappings such a
page would reach the statement timeout. On (patient_id, id) every page is a range in order,
whatever the patient: its plan stops after the page's rows.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 00:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_patient_doctor_patient_id_id", "patient_doctor", ["patient_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_patient_doctor_patient_id_id", "patient_doctor")
