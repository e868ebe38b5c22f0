"""The database phase: make, migrate and seed (with COPY) the databases a run measures."""

from __future__ import annotations

import os
import subprocess
import time
import unicodedata
from collections.abc import Iterator
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from .config import PASSWORD, ROOT, USERNAME, VENV_BIN, Config, Sizes
from .runtime import CLEANUP, log


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/") or "healthcare_bench"


def admin_url(url: str) -> str:
    return with_database(url, "postgres")


def drop_database(url_of_admin: str, name: str) -> None:
    with psycopg.connect(url_of_admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def scalar(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    """The first column of the first row (a count, a setting): the query must return one."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise RuntimeError(f"no row from {query!r}")
    return row[0]


def create_database(url: str) -> None:
    """A new, empty database at ``url``, dropped when the run ends."""
    recreate_database(url)
    name = database_name(url)
    CLEANUP.databases.append((name, partial(drop_database, admin_url(url), name)))


def recreate_database(url: str) -> None:
    """The database at ``url`` dropped if it exists, and created empty."""
    name = database_name(url)
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    result = subprocess.run(
        [str(VENV_BIN / "healthcare"), "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"healthcare upgrade failed:\n{result.stdout}\n{result.stderr}")


def seeded_counts(url: str) -> dict[str, int] | None:
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            return {
                t: int(scalar(conn, f"SELECT count(*) FROM {t}"))
                for t in ("user_account", "patient", "doctor", "patient_doctor")
            }
    except psycopg.Error:
        return None


# --- seeding with COPY ------------------------------------------------------------------

FIRST = [
    "Ada",
    "Alan",
    "Grace",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Frances",
    "Dennis",
    "Radia",
    "Niklaus",
    "Hedy",
    "Tim",
    "Shafi",
    "Leslie",
    "Sophie",
    "Guido",
    "Lynn",
    "Bjarne",
    "Annie",
    "John",
    "Mary",
    "Claude",
]
LAST = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Allen",
    "Ritchie",
    "Perlman",
    "Wirth",
    "Lamarr",
    "Berners-Lee",
    "Goldwasser",
    "Lamport",
    "Wilson",
    "Rossum",
    "Conway",
    "Stroustrup",
    "Easley",
    "McCarthy",
    "Jackson",
    "Shannon",
]
STREETS = [
    "Oak Street",
    "Maple Avenue",
    "Elm Road",
    "Cedar Lane",
    "Pine Court",
    "Birch Way",
    "Willow Drive",
    "Ash Grove",
]
SPECIALTIES = [
    "Cardiology",
    "Dermatology",
    "Endocrinology",
    "Gastroenterology",
    "General Practice",
    "Neurology",
    "Oncology",
    "Ophthalmology",
    "Orthopaedics",
    "Paediatrics",
    "Psychiatry",
    "Radiology",
    "Rheumatology",
    "Urology",
]
GENDERS = ("Male", "Female", "Other", "Unknown")
NOTES = (
    "Allergic to penicillin.",
    "Follow-up in six weeks.",
    "Prefers morning visits.",
    "Type 2 diabetes, well controlled.",
    "Non-smoker.",
    "Hypertension; on medication.",
)


def _fragments() -> tuple[str, ...]:
    """What search_patients searches for: the first three letters of each seeded first and
    last name, lower case (each one or more names' piece: 1/24 to 1/8 of the patients)."""
    return tuple(sorted({name[:3].lower() for name in (*FIRST, *LAST)}))


SEARCH_FRAGMENTS = _fragments()


def identity_key(value: str) -> str:
    # The API's healthcare.domain.rules.identity_key (NFKC + casefold), for the seeded rows.
    return unicodedata.normalize("NFKC", value).casefold()


def search_key(text: str) -> str:
    # The API's healthcare.domain.listing.search_key (no accents, case-folded): the column
    # that searches and name ordering read (migration 0006).
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare.casefold())


def _ts(i: int) -> str:
    return f"2025-{1 + i % 12:02d}-{1 + i % 28:02d} {i % 24:02d}:{i % 60:02d}:00+00"


def _copy(
    conn: psycopg.Connection[Any],
    table: str,
    columns: str,
    rows: Iterator[str],
    chunk: int = 20_000,
) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        buffer: list[str] = []
        for row in rows:
            buffer.append(row)
            if len(buffer) >= chunk:
                copy.write("".join(buffer))
                buffer.clear()
        if buffer:
            copy.write("".join(buffer))


def user_rows(users: int, password_hash: str) -> Iterator[str]:
    for i in range(1, users + 1):
        name = USERNAME.format(i)
        email = f"{name}@example.org"
        yield (
            f"{i}\t{name}\t{identity_key(name)}\t{email}\t{identity_key(email)}\t"
            f"{password_hash}\tt\tf\tf\t{_ts(i)}\t{_ts(i)}\n"
        )


def _mix(p: int, salt: int) -> int:
    """A number that looks random for patient ``p`` (a multiplicative hash), the same on
    every run. Owners are ``p`` modulo the users, so anything computed from ``p`` modulo a
    divisor of 100 (``p % 4``...) would be one value per owner: every patient of a user of
    one gender, or one age, and a filter or a search would find all or nothing."""
    return (((p + salt * 0x9E3779B9) * 2654435761) % 2**32) >> 8


def patient_rows(first_id: int, last_id: int, users: int) -> Iterator[str]:
    # Patient p belongs to user ((p - 1) % users) + 1: bench/lua/scenario.lua relies on it.
    # Name, gender and age are spread evenly over each user's patients (see _mix).
    for p in range(first_id, last_id + 1):
        name = f"{FIRST[_mix(p, 3) % len(FIRST)]} {LAST[_mix(p, 4) % len(LAST)]}"
        phone = f"+1 555 {p % 10_000_000:07d}" if p % 5 else "\\N"
        email = f"patient{p}@example.org" if p % 3 else "\\N"
        address = f"{p % 997 + 1} {STREETS[p % len(STREETS)]}, Springfield" if p % 2 else "\\N"
        notes = NOTES[p % len(NOTES)] if p % 4 == 0 else "\\N"
        yield (
            f"{p}\t{((p - 1) % users) + 1}\t{name}\t{search_key(name)}\t{_mix(p, 2) % 100}\t"
            f"{GENDERS[_mix(p, 1) % 4]}\t{phone}\t{email}\t{address}\t{notes}\t{_ts(p)}\t{_ts(p)}\n"
        )


def doctor_rows(doctors: int, users: int) -> Iterator[str]:
    for i in range(1, doctors + 1):
        name = f"Dr. {FIRST[(i * 5) % len(FIRST)]} {LAST[(i * 11) % len(LAST)]}"
        specialty = SPECIALTIES[i % len(SPECIALTIES)]
        yield (
            f"{i}\t{(i % users) + 1}\t{name}\t{search_key(name)}\t{specialty}\t"
            f"{search_key(specialty)}\t"
            f"doctor{i}@clinic.example.org\t+1 555 {i:07d}\t{_ts(i)}\t{_ts(i)}\n"
        )


def mapping_rows(patients: int, doctors: int, per_patient: int, users: int) -> Iterator[str]:
    # Patient p is mapped to doctors ((7p + j) % D) + 1 for j < per_patient; the benchmark's
    # new pairs use j >= per_patient (see create_mapping in scenario.lua). A mapping names
    # its patient's owner too.
    mapping_id = 0
    for p in range(1, patients + 1):
        owner = ((p - 1) % users) + 1
        for j in range(per_patient):
            mapping_id += 1
            doctor = ((p * 7 + j) % doctors) + 1
            yield f"{mapping_id}\t{owner}\t{p}\t{doctor}\t{_ts(p)}\t{_ts(p)}\n"


USER_COLUMNS = (
    "id, username, username_key, email, email_key, password_hash, is_active, "
    "is_staff, is_superuser, created_at, updated_at"
)
PATIENT_COLUMNS = (
    "id, created_by, name, name_key, age, gender, phone, email, address, notes, "
    "created_at, updated_at"
)
DOCTOR_COLUMNS = (
    "id, created_by, name, name_key, specialization, specialization_key, email, phone, "
    "created_at, updated_at"
)
MAPPING_COLUMNS = "id, owner_id, patient_id, doctor_id, created_at, updated_at"


def reset_sequences_and_analyze(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for table in ("user_account", "patient", "doctor", "patient_doctor"):
            conn.execute(
                f"SELECT setval('{table}_id_seq', GREATEST((SELECT max(id) FROM {table}), 1))"
            )
        # VACUUM as well as ANALYZE: a long-lived database has its visibility map set by
        # autovacuum; a freshly copied one would otherwise read the heap for every count.
        conn.execute("VACUUM ANALYZE")
        # And CHECKPOINT: the copy and the vacuum leave hundreds of MB of WAL (490 MB for
        # the 1M-row growth), which the next timed checkpoint would write out during the
        # measurements that follow.
        try:
            conn.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            log("CHECKPOINT not allowed for this role: timed checkpoints may disturb rounds")


def _drop_gin_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop the GIN indexes (PostgreSQL's patient name pieces, made by the migrations) and
    return the statements that make them again: built once after the copy, such an index
    costs a fraction of keeping it row by row during it (1,000,000 patients: 261 s)."""
    rows = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        " AND indexdef LIKE '% USING gin %'"
    ).fetchall()
    for name, _ in rows:
        conn.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in rows]


def seed(url: str, sizes: Sizes, password_hash: str, *, with_directory: bool = True) -> None:
    started = time.monotonic()
    with psycopg.connect(url) as conn:
        indexes = _drop_gin_indexes(conn)
        _copy(conn, "user_account", USER_COLUMNS, user_rows(sizes.users, password_hash))
        if with_directory:
            _copy(conn, "doctor", DOCTOR_COLUMNS, doctor_rows(sizes.doctors, sizes.users))
        _copy(conn, "patient", PATIENT_COLUMNS, patient_rows(1, sizes.patients, sizes.users))
        if with_directory:
            _copy(
                conn,
                "patient_doctor",
                MAPPING_COLUMNS,
                mapping_rows(
                    sizes.patients, sizes.doctors, sizes.mappings_per_patient, sizes.users
                ),
            )
        for definition in indexes:
            conn.execute(definition)
        conn.commit()
    reset_sequences_and_analyze(url)
    log(
        f"seeded {sizes.users} users, {sizes.patients} patients"
        + (f", {sizes.doctors} doctors, {sizes.mappings} mappings" if with_directory else "")
        + f" in {time.monotonic() - started:.1f}s"
    )


def reset_to_seeded(url: str, sizes: Sizes) -> None:
    """--reuse-db: remove what earlier runs wrote, so pairs and ids start clean."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM refresh_session")
        conn.execute("DELETE FROM patient_doctor WHERE id > %s", (sizes.mappings,))
        conn.execute("DELETE FROM patient WHERE id > %s", (sizes.patients,))
    reset_sequences_and_analyze(url)


def prepare_database(
    cfg: Config, url: str, sizes: Sizes, password_hash: str, *, with_directory: bool = True
) -> None:
    expected = {
        "user_account": sizes.users,
        "patient": sizes.patients,
        "doctor": sizes.doctors if with_directory else 0,
        "patient_doctor": sizes.mappings if with_directory else 0,
    }
    if cfg.reuse_db:
        counts = seeded_counts(url)
        if (
            counts is not None
            and all(counts[t] >= n for t, n in expected.items())
            and counts["user_account"] == sizes.users
        ):
            log(f"reusing database {database_name(url)} (reset to the seeded state)")
            migrate(url)  # seeded by an older schema, perhaps
            reset_to_seeded(url, sizes)
            return
    log(f"creating database {database_name(url)}")
    create_database(url)
    migrate(url)
    seed(url, sizes, password_hash, with_directory=with_directory)


def db_sessions(url: str) -> int | None:
    """PostgreSQL's count of sessions ever opened to the database (pg_stat_database)."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
    except psycopg.Error as error:  # e.g. the server's connection slots are all taken
        log(f"could not read pg_stat_database: {str(error).strip()}")
        return None
    return int(row[0]) if row else None


def hash_password(rounds: int) -> str:
    import bcrypt

    return bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds)).decode("ascii")
