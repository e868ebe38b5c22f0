"""The schema, as ORM models. Repositories query their ``__table__`` with Core statements.

Every constraint and index has an explicit name, so migrations and error handling can refer
to it on PostgreSQL and SQLite alike. Lengths come from the domain rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from advanced_alchemy.base import BigIntAuditBase, BigIntBase, DefaultBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    TableClause,
    Text,
    UniqueConstraint,
    column,
    table,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from healthcare.domain.rules import (
    ADDRESS_MAX,
    EMAIL_MAX,
    KEY_GROWTH,
    NAME_MAX,
    NOTES_MAX,
    PHONE_MAX,
    USERNAME_MAX,
)

GENDER_MAX = 16
PASSWORD_HASH_MAX = 255
SESSION_ID_MAX = 32
JTI_MAX = 64
AUDIT_ACTION_MAX = 32
AUDIT_OUTCOME_MAX = 16
AUDIT_RESOURCE_MAX = 16
CLIENT_MAX = 64  # an IPv6 address is at most 45 characters
REQUEST_ID_MAX = 128
LOGIN_NAME_KEY_MAX = 64  # a SHA-256 in hex
SEARCH_KEY_MAX = NAME_MAX * KEY_GROWTH  # search_key may lengthen a name as identity_key does
# Search keys sort by code point everywhere: SQLite's BINARY does, and PostgreSQL's "C"
# collation does (a database's default collation may be a locale's, which orders otherwise).
SEARCH_KEY = String(SEARCH_KEY_MAX).with_variant(
    String(SEARCH_KEY_MAX, collation="C"), "postgresql"
)

# Without AUTOINCREMENT SQLite reuses the highest deleted rowid; a reused user id would let
# a deleted user's unexpired access token act for a new user. PostgreSQL sequences never
# reuse. (A future batch migration that recreates a table must pass this in table_kwargs.)
_NO_ID_REUSE: dict[str, Any] = {"sqlite_autoincrement": True}

# The type of the ids: what a column with a ForeignKey to one gets by itself.
_KEY = BigInteger().with_variant(Integer(), "sqlite")

# advanced-alchemy's shared registry; everything mapped on it must come from a migration.
metadata: MetaData = BigIntAuditBase.metadata


class UserAccountRow(BigIntAuditBase):
    __tablename__ = "user_account"
    __table_args__ = (
        UniqueConstraint("username_key", name="uq_user_account_username_key"),
        UniqueConstraint("email_key", name="uq_user_account_email_key"),
        _NO_ID_REUSE,
    )

    username: Mapped[str] = mapped_column(String(USERNAME_MAX))
    # identity_key(username) and identity_key(email): computed in Python so that uniqueness
    # is case-insensitive in the same way on both databases.
    username_key: Mapped[str] = mapped_column(String(USERNAME_MAX * KEY_GROWTH))
    email: Mapped[str] = mapped_column(String(EMAIL_MAX))
    email_key: Mapped[str] = mapped_column(String(EMAIL_MAX * KEY_GROWTH))
    password_hash: Mapped[str] = mapped_column(String(PASSWORD_HASH_MAX))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)


class LoginNameRow(DefaultBase):
    """A name an account signs in with (its username, and its email if that differs), keyed
    by lookalikes.login_name_key (migration 0008): the primary key lets no two accounts have
    look-alike names, across usernames and emails, whichever came first."""

    __tablename__ = "login_name"
    __table_args__ = (Index("ix_login_name_user_id", "user_id"),)

    key: Mapped[str] = mapped_column(String(LOGIN_NAME_KEY_MAX), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE", name="fk_login_name_user_id")
    )


class PatientRow(BigIntAuditBase):
    __tablename__ = "patient"
    __table_args__ = (
        # Every patient query filters by owner and orders by id. Unique so that a mapping's
        # foreign key can name the pair (migration 0004).
        Index("uq_patient_created_by_id", "created_by", "id", unique=True),
        # A page filtered by gender and age, ordered by age (migration 0007).
        Index("ix_patient_created_by_gender_age", "created_by", "gender", "age", "id"),
        _NO_ID_REUSE,
    )

    created_by: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE", name="fk_patient_created_by")
    )
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    age: Mapped[int] = mapped_column(Integer)
    gender: Mapped[str] = mapped_column(String(GENDER_MAX))
    phone: Mapped[str | None] = mapped_column(String(PHONE_MAX))
    email: Mapped[str | None] = mapped_column(String(EMAIL_MAX))
    address: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))
    notes: Mapped[str | None] = mapped_column(String(NOTES_MAX))
    # Bumped by every change (migration 0005): If-Match compares with it.
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    # search_key(name): what a search matches and the name ordering sorts (migration 0006).
    name_key: Mapped[str] = mapped_column(SEARCH_KEY, server_default="")


class DoctorRow(BigIntAuditBase):
    __tablename__ = "doctor"
    __table_args__ = (
        # Deleting a user sets created_by to NULL here; the index keeps that cheap.
        Index("ix_doctor_created_by", "created_by"),
        _NO_ID_REUSE,
    )

    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL", name="fk_doctor_created_by")
    )
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    specialization: Mapped[str] = mapped_column(String(NAME_MAX))
    email: Mapped[str | None] = mapped_column(String(EMAIL_MAX))
    phone: Mapped[str | None] = mapped_column(String(PHONE_MAX))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))  # as a patient's
    name_key: Mapped[str] = mapped_column(SEARCH_KEY, server_default="")
    specialization_key: Mapped[str] = mapped_column(String(SEARCH_KEY_MAX), server_default="")


class PatientDoctorRow(BigIntAuditBase):
    """A patient's doctor. ``owner_id`` is the patient's owner, copied so that a user's
    mappings are a range of one index (migration 0004); the foreign key on the pair keeps
    it the patient's."""

    __tablename__ = "patient_doctor"
    __table_args__ = (
        UniqueConstraint("patient_id", "doctor_id", name="uq_patient_doctor_pair"),
        # A patient's mappings in order of assignment: a page is a range (migration 0011).
        Index("ix_patient_doctor_patient_id_id", "patient_id", "id"),
        Index("ix_patient_doctor_doctor_id", "doctor_id"),
        Index("ix_patient_doctor_owner_id_id", "owner_id", "id"),
        ForeignKeyConstraint(
            ["owner_id", "patient_id"],
            ["patient.created_by", "patient.id"],
            ondelete="CASCADE",
            name="fk_patient_doctor_patient",
        ),
        _NO_ID_REUSE,
    )

    owner_id: Mapped[int] = mapped_column(_KEY)
    patient_id: Mapped[int] = mapped_column(_KEY)
    doctor_id: Mapped[int] = mapped_column(
        ForeignKey("doctor.id", ondelete="CASCADE", name="fk_patient_doctor_doctor_id")
    )


class RefreshSessionRow(DefaultBase):
    """One login's refresh-token chain; its id is the random session id, not a sequence."""

    __tablename__ = "refresh_session"
    __table_args__ = (Index("ix_refresh_session_user_id", "user_id"),)

    id: Mapped[str] = mapped_column(String(SESSION_ID_MAX), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE", name="fk_refresh_session_user_id")
    )
    current_jti: Mapped[str] = mapped_column(String(JTI_MAX))
    created_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class TokenRevocationRow(DefaultBase):
    """Per user, the time before which their access tokens are refused (migration 0009):
    what every worker keeps in memory, and learns of here (revocation_feed.py)."""

    __tablename__ = "token_revocation"
    __table_args__ = (Index("ix_token_revocation_not_before", "not_before"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE", name="fk_token_revocation_user_id"),
        primary_key=True,
    )
    not_before: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))


class PatientCountRow(DefaultBase):
    """How many patients each user owns, kept by triggers (migration 0003; see TRIGGERS:
    rebuilding ``patient`` in batch mode drops them).

    A page of patients carries the owner's total; counting the owner's rows per request
    would grow with the owner's records, reading one row does not.
    """

    __tablename__ = "patient_count"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE", name="fk_patient_count_user_id"),
        primary_key=True,
    )
    patients: Mapped[int] = mapped_column(BigInteger)


class MappingCountRow(DefaultBase):
    """How many mappings each user's patients have, kept by triggers (migration 0004)."""

    __tablename__ = "mapping_count"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE", name="fk_mapping_count_user_id"),
        primary_key=True,
    )
    mappings: Mapped[int] = mapped_column(BigInteger)


class DoctorCountRow(DefaultBase):
    """How many doctors the directory holds: one row, kept by triggers (migration 0004)."""

    __tablename__ = "doctor_count"
    __table_args__ = (CheckConstraint("id = 1", name="ck_doctor_count_one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    doctors: Mapped[int] = mapped_column(BigInteger)


class AuditEventRow(BigIntBase):
    """The audit trail. Append-only: triggers (migration 0002) refuse UPDATE and DELETE.

    ``user_id`` has no foreign key on purpose: the trail outlives the accounts it names.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_occurred_at", "occurred_at"),
        Index("ix_audit_event_user_id_occurred_at", "user_id", "occurred_at"),
        Index("ix_audit_event_resource_occurred_at", "resource_type", "resource_id", "occurred_at"),
        _NO_ID_REUSE,
    )

    occurred_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    action: Mapped[str] = mapped_column(String(AUDIT_ACTION_MAX))
    outcome: Mapped[str] = mapped_column(String(AUDIT_OUTCOME_MAX))
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    resource_type: Mapped[str | None] = mapped_column(String(AUDIT_RESOURCE_MAX))
    resource_id: Mapped[int | None] = mapped_column(BigInteger)
    client: Mapped[str | None] = mapped_column(String(CLIENT_MAX))
    request_id: Mapped[str | None] = mapped_column(String(REQUEST_ID_MAX))


# What the migrations make that the models cannot say: the triggers, by dialect and table.
# tests/integration/test_schema.py finds each of them (and every named index and constraint
# of the models) in the database's own catalog at head.
#
# Batch mode rebuilds a table on SQLite (op.batch_alter_table: create a copy, move the rows,
# drop the old, rename), and a dropped table takes its triggers with it: a batch migration
# of patient, doctor, patient_doctor or audit_event must create that table's triggers again.
TRIGGERS: dict[str, dict[str, frozenset[str]]] = {
    "postgresql": {
        "audit_event": frozenset({"audit_event_append_only", "audit_event_no_truncate"}),
        "patient": frozenset(
            {
                "patient_count_added",
                "patient_count_removed",
                "patient_piece_count_added",
                "patient_piece_count_removed",
                "patient_piece_count_renamed",
            }
        ),
        "doctor": frozenset({"doctor_count_added", "doctor_count_removed"}),
        "patient_doctor": frozenset({"mapping_count_added", "mapping_count_removed"}),
    },
    "sqlite": {
        "audit_event": frozenset({"audit_event_no_update", "audit_event_no_delete"}),
        "patient": frozenset({"patient_count_insert", "patient_count_delete"}),
        "doctor": frozenset({"doctor_count_insert", "doctor_count_delete"}),
        "patient_doctor": frozenset({"mapping_count_insert", "mapping_count_delete"}),
    },
}

# Indexes and constraints the models do not declare because only one dialect has them, by
# table (migrations 0007 and 0010: an owner's name search).
DIALECT_INDEXES: dict[str, dict[str, frozenset[str]]] = {
    "postgresql": {
        "patient": frozenset({"ix_patient_owner_name_grams", "ix_patient_created_by_id_name_key"}),
        "patient_piece_count": frozenset(
            {"pk_patient_piece_count", "fk_patient_piece_count_owner_id"}
        ),
    },
    "sqlite": {},
}
# Tables only one dialect has (not models): PostgreSQL's count of each owner's patients per
# name piece, kept by triggers (migration 0010), which a three-letter search reads its total
# from. Queried through patient_piece_count below.
DIALECT_TABLES: dict[str, frozenset[str]] = {
    "postgresql": frozenset({"patient_piece_count"}),
    "sqlite": frozenset(),
}

# The Core tables the repositories query.
user_account = cast(Table, UserAccountRow.__table__)
login_name = cast(Table, LoginNameRow.__table__)
patient = cast(Table, PatientRow.__table__)
doctor = cast(Table, DoctorRow.__table__)
patient_doctor = cast(Table, PatientDoctorRow.__table__)
refresh_session = cast(Table, RefreshSessionRow.__table__)
token_revocation = cast(Table, TokenRevocationRow.__table__)
audit_event = cast(Table, AuditEventRow.__table__)
patient_count = cast(Table, PatientCountRow.__table__)
mapping_count = cast(Table, MappingCountRow.__table__)
doctor_count = cast(Table, DoctorCountRow.__table__)
patient_piece_count: TableClause = table(
    "patient_piece_count",
    column("owner_id", BigInteger),
    column("piece", Text),
    column("patients", BigInteger),
)

__all__ = [
    "DIALECT_INDEXES",
    "DIALECT_TABLES",
    "TRIGGERS",
    "AuditEventRow",
    "DoctorCountRow",
    "DoctorRow",
    "LoginNameRow",
    "MappingCountRow",
    "PatientCountRow",
    "PatientDoctorRow",
    "PatientRow",
    "RefreshSessionRow",
    "TokenRevocationRow",
    "UserAccountRow",
    "audit_event",
    "doctor",
    "doctor_count",
    "login_name",
    "mapping_count",
    "metadata",
    "patient",
    "patient_count",
    "patient_doctor",
    "patient_piece_count",
    "refresh_session",
    "token_revocation",
    "user_account",
]
