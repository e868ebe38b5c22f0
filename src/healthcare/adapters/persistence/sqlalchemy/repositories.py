"""The repository ports over SQLAlchemy Core statements, returning domain objects.

Statements are built once at import with bound parameters: SQLAlchemy memoises a
statement's cache key, so each call skips both building and compiling SQL. Rows are read
by position, in the order of the ``_*_COLUMNS`` tuples: SQLAlchemy's by-name attribute access
costs about half a microsecond per field, unpacking a row a few nanoseconds. Every read is one
query; list queries carry their total in a column, last (an uncorrelated subquery, which
the database runs once: a count row kept by triggers for an owner's patients, an owner's
mappings and the directory, and an index count of the few mappings of one patient).

``update(table)`` without ``.values()`` takes its SET clause from the execution parameters
whose keys are column names; WHERE parameters are prefixed ``b_`` to stay out of it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from collections.abc import Mapping as MappingType
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from sqlalchemy import (
    BigInteger,
    Select,
    Text,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from healthcare.adapters.lookalikes import LOOKALIKE_TAKEN, login_name_keys
from healthcare.adapters.persistence.sqlalchemy import tables
from healthcare.adapters.persistence.sqlalchemy.revocation_feed import (
    REVOCATION_CHANNEL,
    announcement,
)
from healthcare.adapters.persistence.sqlalchemy.transaction import Transaction
from healthcare.application.paging import Page, PageRequest
from healthcare.domain.entities import (
    Doctor,
    DoctorData,
    Gender,
    Mapping,
    NewUser,
    Patient,
    PatientChanges,
    PatientData,
    RefreshSession,
    User,
)
from healthcare.domain.errors import (
    ACCOUNT_GONE,
    AuthenticationFailed,
    Conflict,
    NotFound,
    PreconditionFailed,
)
from healthcare.domain.listing import (
    NO_DOCTOR_FILTER,
    NO_MAPPING_FILTER,
    NO_PATIENT_FILTER,
    NO_USER_FILTER,
    DoctorFilter,
    MappingFilter,
    PatientFilter,
    SortKey,
    UserFilter,
    search_key,
)
from healthcare.domain.rules import identity_key

T = TypeVar("T")

u, p, d = tables.user_account, tables.patient, tables.doctor
m, rs = tables.patient_doctor, tables.refresh_session
pc, mc, dc = tables.patient_count, tables.mapping_count, tables.doctor_count

USERNAME_TAKEN = "A user with that username already exists"
EMAIL_TAKEN = "A user with that email already exists"
ALREADY_ASSIGNED = "This doctor is already assigned to this patient"


def _now() -> datetime:
    return datetime.now(UTC)


def _paged(statement: Select[Any], count: Select[Any]) -> Select[Any]:
    """One page of ``statement`` (already ordered), each row carrying the unpaged total.

    Not ``count(*) OVER ()``: a window reads every matching row, columns and all, before
    LIMIT applies.
    """
    total = count.scalar_subquery()
    return (
        statement.add_columns(total.label("total"))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


def _owners_count(counted: Any) -> Select[Any]:
    """The ``b_owner_id`` user's total from ``counted``, a column of a count row kept by
    triggers (0 before their first row): a page's total costs one row, however many."""
    rows = counted.table
    owners = select(counted).where(rows.c.user_id == bindparam("b_owner_id")).scalar_subquery()
    return select(func.coalesce(owners, 0))


def _paged_with_window_total(statement: Select[Any]) -> Select[Any]:
    """As _paged, the total counted over the rows the statement reads anyway: for a page
    that must read every matching row (to sort them, or to check each against the search),
    one pass instead of the count's second."""
    total = func.count().over().label("total")
    return statement.add_columns(total).limit(bindparam("limit")).offset(bindparam("offset"))


def _like(key: str) -> str:
    """A LIKE pattern for "contains ``key``", its own wildcards escaped (with "/")."""
    escaped = key.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def _order(
    ordering: tuple[SortKey, ...], columns: MappingType[str, Any], id_column: Any
) -> list[Any]:
    """ORDER BY the keys asked for, then by id: a stable order that pages never overlap."""
    clauses = [columns[k.field].desc() if k.descending else columns[k.field] for k in ordering]
    if all(key.field != "id" for key in ordering):
        clauses.append(id_column)
    return clauses


class _Repository:
    def __init__(self, db: Transaction) -> None:
        # db.read for plain SELECTs; db.write for anything that writes or locks.
        self._db = db

    async def _insert_as(self, statement: Any, params: MappingType[str, Any]) -> Any:
        """The row a user's insert returns. The user is the caller, proven by an access
        token alone: an account deleted since (in SQL, by the database's owner) fails the
        foreign key, which is the caller's credentials failing, not the server."""
        try:
            return (await self._db.write(statement, params)).one()
        except IntegrityError as error:
            if _violation(error)[0] == _FOREIGN_KEY:
                raise AuthenticationFailed(ACCOUNT_GONE) from None
            raise

    async def _page(
        self,
        statement: Select[Any],
        count: Select[Any],
        params: MappingType[str, Any],
        page: PageRequest,
        convert: Callable[[Any], T],
    ) -> Page[T]:
        paged_params = {**params, "limit": page.limit, "offset": page.offset}
        rows = (await self._db.read(statement, paged_params)).all()
        if rows:
            total: int = rows[0][-1]  # the last column, see _paged
        elif page.offset > 0 or page.limit <= 0:
            # Past the end, so no row carried the total: ask for it separately.
            total = (await self._db.read(count, params)).scalar_one()
        else:
            total = 0
        return Page([convert(row) for row in rows], total)


# Constraint violations, told apart portably: psycopg gives the SQLSTATE and the constraint
# name; sqlite3 only a message such as "UNIQUE constraint failed: user_account.email_key".
# Constraint names and SQLite's "table.column" both contain the column name.
_UNIQUE: Final = "unique"
_FOREIGN_KEY: Final = "foreign key"


def _violation(error: IntegrityError) -> tuple[str | None, str]:
    """The kind of constraint that failed, and text that names it."""
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate is not None:
        name = getattr(getattr(original, "diag", None), "constraint_name", None)
        return {"23505": _UNIQUE, "23503": _FOREIGN_KEY}.get(sqlstate), name or ""
    message = str(original)
    if "UNIQUE constraint failed" in message:
        return _UNIQUE, message
    if "FOREIGN KEY constraint failed" in message:
        return _FOREIGN_KEY, message
    return None, message


# Users ----------------------------------------------------------------------------------

_USER_COLUMNS = (
    u.c.id,
    u.c.username,
    u.c.email,
    u.c.password_hash,
    u.c.is_active,
    u.c.is_staff,
    u.c.is_superuser,
    u.c.created_at,
    u.c.updated_at,
)
_INSERT_USER = insert(u).returning(*_USER_COLUMNS)
_INSERT_LOGIN_NAME = insert(tables.login_name)
_DELETE_LOGIN_NAMES = delete(tables.login_name).where(
    tables.login_name.c.user_id == bindparam("b_user_id")
)
_GET_USER = select(*_USER_COLUMNS).where(u.c.id == bindparam("user_id"))
_UPDATE_USER = update(u).where(u.c.id == bindparam("b_user_id")).returning(*_USER_COLUMNS)
_FIND_USER = (
    select(*_USER_COLUMNS)
    .where(or_(u.c.username_key == bindparam("key"), u.c.email_key == bindparam("key")))
    # An email match wins: see UserRepository.find_by_login.
    .order_by(case((u.c.email_key == bindparam("key"), 0), else_=1))
    .limit(1)
)


# A filter's parameter and the condition it adds to the accounts listed.
_USER_CONDITIONS: dict[str, Any] = {
    "b_search": or_(
        u.c.username_key.like(bindparam("b_search"), escape="/"),
        u.c.email_key.like(bindparam("b_search"), escape="/"),
    ),
    "b_is_staff": u.c.is_staff == bindparam("b_is_staff"),
    "b_is_active": u.c.is_active == bindparam("b_is_active"),
}


@functools.lru_cache(maxsize=16)
def _filtered_users(given: frozenset[str]) -> tuple[Select[Any], Select[Any]]:
    """A page of accounts narrowed by the filters ``given`` names, and its count."""
    where = [condition for name, condition in _USER_CONDITIONS.items() if name in given]
    rows = select(*_USER_COLUMNS).where(*where).order_by(u.c.id)
    count = select(func.count()).select_from(u).where(*where)
    return _paged(rows, count), count


def _user(row: Any) -> User:
    (id_, username, email, password_hash, active, staff, superuser, created, updated) = row[:9]
    return User(
        id=id_,
        username=username,
        email=email,
        password_hash=password_hash,
        is_active=active,
        is_staff=staff,
        is_superuser=superuser,
        date_joined=created,
        updated_at=updated,
    )


class SqlAlchemyUserRepository(_Repository):
    async def add(self, user: NewUser) -> User:
        now = _now()
        params = {
            "username": user.username,
            "username_key": identity_key(user.username),
            "email": user.email,
            "email_key": identity_key(user.email),
            "password_hash": user.password_hash,
            "is_active": True,
            "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
            "created_at": now,
            "updated_at": now,
        }
        claiming = None  # the field whose login name is being written
        try:
            # The savepoint keeps the transaction usable after a violation (PostgreSQL
            # aborts the whole transaction otherwise).
            async with self._db.savepoint():
                row = (await self._db.write(_INSERT_USER, params)).one()
                # Claimed in the same transaction: a concurrent registration of a look-alike
                # waits for this one on the key, then fails.
                for name, key in login_name_keys(user.username, user.email).items():
                    claiming = name
                    await self._db.write(_INSERT_LOGIN_NAME, {"key": key, "user_id": row[0]})
        except IntegrityError as error:
            kind, subject = _violation(error)
            if kind == _UNIQUE and claiming is not None:
                raise Conflict(LOOKALIKE_TAKEN[claiming], claiming) from None
            if kind == _UNIQUE and "username_key" in subject:
                raise Conflict(USERNAME_TAKEN, "username") from None
            if kind == _UNIQUE and "email_key" in subject:
                raise Conflict(EMAIL_TAKEN, "email") from None
            raise
        return _user(row)

    async def get(self, user_id: int) -> User | None:
        row = (await self._db.read(_GET_USER, {"user_id": user_id})).first()
        return None if row is None else _user(row)

    async def set_active(self, user_id: int, active: bool) -> User | None:
        return await self._change(user_id, is_active=active)

    async def set_password_hash(self, user_id: int, password_hash: str) -> User | None:
        return await self._change(user_id, password_hash=password_hash)

    async def set_staff(self, user_id: int, staff: bool) -> User | None:
        return await self._change(user_id, is_staff=staff)

    async def set_email(self, user_id: int, email: str) -> User | None:
        claiming = None  # as in add: the account's login names are claimed again
        try:
            async with self._db.savepoint():  # as in add
                user = await self._change(user_id, email=email, email_key=identity_key(email))
                if user is None:
                    return None
                await self._db.write(_DELETE_LOGIN_NAMES, {"b_user_id": user_id})
                for name, key in login_name_keys(user.username, user.email).items():
                    claiming = name
                    await self._db.write(_INSERT_LOGIN_NAME, {"key": key, "user_id": user_id})
                return user
        except IntegrityError as error:
            kind, subject = _violation(error)
            if kind == _UNIQUE and "email_key" in subject:
                raise Conflict(EMAIL_TAKEN, "email") from None
            if kind == _UNIQUE and claiming is not None:
                raise Conflict(LOOKALIKE_TAKEN[claiming], claiming) from None
            raise

    async def list(self, page: PageRequest, where: UserFilter = NO_USER_FILTER) -> Page[User]:
        values = {
            "b_search": None if where.search is None else _like(where.search),
            "b_is_staff": where.is_staff,
            "b_is_active": where.is_active,
        }
        given = {name: value for name, value in values.items() if value is not None}
        statement, count = _filtered_users(frozenset(given))
        return await self._page(statement, count, given, page, _user)

    async def _change(self, user_id: int, **values: Any) -> User | None:
        params = {"b_user_id": user_id, **values, "updated_at": _now()}
        row = (await self._db.write(_UPDATE_USER, params)).first()
        return None if row is None else _user(row)

    async def find_by_login(self, username_or_email: str) -> User | None:
        params = {"key": identity_key(username_or_email)}
        row = (await self._db.read(_FIND_USER, params)).first()
        return None if row is None else _user(row)


# Patients -------------------------------------------------------------------------------

_PATIENT_COLUMNS = (
    p.c.id,
    p.c.created_by,
    p.c.name,
    p.c.age,
    p.c.gender,
    p.c.phone,
    p.c.email,
    p.c.address,
    p.c.notes,
    p.c.created_at,
    p.c.updated_at,
    p.c.version,
)
_OWNED_PATIENT = (p.c.id == bindparam("b_patient_id")) & (p.c.created_by == bindparam("b_owner_id"))
_INSERT_PATIENT = insert(p).returning(*_PATIENT_COLUMNS)
_GET_PATIENT = select(*_PATIENT_COLUMNS).where(_OWNED_PATIENT)
_PATIENTS = (
    select(*_PATIENT_COLUMNS).where(p.c.created_by == bindparam("b_owner_id")).order_by(p.c.id)
)
_COUNT_PATIENTS = _owners_count(pc.c.patients)
_LIST_PATIENTS = _paged(_PATIENTS, _COUNT_PATIENTS)
_NEXT_PATIENT_VERSION = {"version": p.c.version + 1}
_UPDATE_PATIENT = (
    update(p).where(_OWNED_PATIENT).values(_NEXT_PATIENT_VERSION).returning(*_PATIENT_COLUMNS)
)
_DELETE_PATIENT = delete(p).where(_OWNED_PATIENT).returning(p.c.id)
# If-Match: the version is checked in the statement that writes, so nothing comes between.
_AT_PATIENT_VERSION = p.c.version == bindparam("b_version")
_UPDATE_PATIENT_AT_VERSION = (
    update(p)
    .where(_OWNED_PATIENT, _AT_PATIENT_VERSION)
    .values(_NEXT_PATIENT_VERSION)
    .returning(*_PATIENT_COLUMNS)
)
_DELETE_PATIENT_AT_VERSION = delete(p).where(_OWNED_PATIENT, _AT_PATIENT_VERSION).returning(p.c.id)


_FIND_PATIENT = select(*_PATIENT_COLUMNS).where(p.c.id == bindparam("b_patient_id"))
_PATIENTS_AFTER = (
    select(*_PATIENT_COLUMNS)
    .where(p.c.id > bindparam("b_after_id"))
    .order_by(p.c.id)
    .limit(bindparam("b_limit"))
)
_OWNER_PATIENTS_AFTER = _PATIENTS_AFTER.where(p.c.created_by == bindparam("b_owner_id"))
# What a bulk import writes of each patient, in this order (the id comes from insert_many).
_PATIENT_BULK_COLUMNS = (
    "created_by",
    "name",
    "name_key",
    "age",
    "gender",
    "phone",
    "email",
    "address",
    "notes",
    "created_at",
    "updated_at",
)

_GENDERS = {gender.value: gender for gender in Gender}
_PATIENT_ORDER = {
    "name": p.c.name_key,
    "age": p.c.age,
    "created_at": p.c.created_at,
    "updated_at": p.c.updated_at,
    "id": p.c.id,
}


# A filter's parameter and the condition it adds to an owner's patients.
_PATIENT_CONDITIONS: dict[str, Any] = {
    "b_owner_id": p.c.created_by == bindparam("b_owner_id"),  # absent: every owner's
    "b_search": p.c.name_key.like(bindparam("b_search"), escape="/"),
    "b_gender": p.c.gender == bindparam("b_gender"),
    "b_min_age": p.c.age >= bindparam("b_min_age"),
    "b_max_age": p.c.age <= bindparam("b_max_age"),
    "b_created_after": p.c.created_at > bindparam("b_created_after", type_=p.c.created_at.type),
    "b_created_before": p.c.created_at < bindparam("b_created_before", type_=p.c.created_at.type),
}


# PostgreSQL (migration 0007): the owner's three-letter pieces of the name key, as indexed.
_OWNER_NAME_GRAMS = func.patient_name_grams(p.c.created_by, p.c.name_key, type_=ARRAY(Text))
GRAM = 3


def _owner_grams(owner_id: int, key: str) -> list[str]:
    """The pieces every name key that contains ``key`` has among its owner's grams (the SQL
    function patient_name_grams of migration 0007): none if ``key`` is shorter than one."""
    return sorted({f"{owner_id} {key[i : i + GRAM]}" for i in range(len(key) - GRAM + 1)})


@functools.lru_cache(maxsize=256)
def _filtered_patients(
    given: frozenset[str], ordering: tuple[SortKey, ...]
) -> tuple[Select[Any], Select[Any]]:
    """A page of an owner's (or, without ``b_owner_id``, everyone's) patients narrowed by the
    filters ``given`` names, and its count: built once per combination, so each is compiled
    once (see transaction.py).

    A name search on PostgreSQL (``b_grams`` given, only with an owner) reads the GIN index of
    the owner's name pieces (migration 0007), then checks each candidate against the pattern,
    counting the page's total in the same pass. The owner's condition is written so that it
    cannot use an index (``IS TRUE``): the pieces already name the owner, and ANDing the
    index's few hundred entries with the owner's 10,000 of uq_patient_created_by_id would cost
    more than the search itself. On SQLite, without an owner, and for a search shorter than a
    piece, a scan. Gender and age: a range of ix_patient_created_by_gender_age."""
    owner = _PATIENT_CONDITIONS["b_owner_id"]
    where = [
        condition
        for name, condition in _PATIENT_CONDITIONS.items()
        if name in given and name != "b_owner_id"
    ]
    if "b_grams" in given:
        where = [owner.is_(True), _OWNER_NAME_GRAMS.contains(bindparam("b_grams")), *where]
    elif "b_owner_id" in given:
        where.insert(0, owner)
    rows = select(*_PATIENT_COLUMNS).where(*where)
    rows = rows.order_by(*_order(ordering, _PATIENT_ORDER, p.c.id))
    count = select(func.count()).select_from(p).where(*where)
    if "b_grams" in given:
        return _paged_with_window_total(rows), count
    return _paged(rows, count), count


# A heap fetch of a candidate costs about as much as reading this many entries of
# ix_patient_created_by_id_name_key (1M patients: 2-20 µs, in shared buffers or not, against
# 0.1-0.3 µs). See _searched_by_one_piece.
_FETCH_VS_ENTRY = 30


@functools.lru_cache(maxsize=8)
def _searched_by_one_piece(ordering: tuple[SortKey, ...]) -> tuple[Select[Any], Select[Any]]:
    """PostgreSQL, a search of exactly one piece (three letters) of an owner's patients in id
    order, and its count (migration 0010). A name key contains the three letters exactly when
    the owner's piece of them is among its pieces, so the total is the piece's count row.

    The page is whichever of two ways reads less, decided in the statement from that count n
    and the owner's total N: reading the owner's (id, name key) entries in order until the
    page is full, about (offset + limit) * N / n entries without the table; or, for a piece
    few patients have, the pieces index and a fetch of each of the n candidates, as a longer
    search does. The way not taken is never run (a one-time filter on the CTE's choice)."""
    ppc = tables.patient_piece_count
    owner_id: Any = bindparam("b_owner_id")
    # An aggregate: one row, 0 without a count row, and a subquery PostgreSQL cannot inline
    # (which would repeat the lookup for each use of n).
    count = select(func.coalesce(func.max(ppc.c.patients), 0).label("n")).where(
        ppc.c.owner_id == owner_id, ppc.c.piece == bindparam("b_piece")
    )
    counted = count.subquery("counted")
    owners = func.coalesce(
        select(pc.c.patients).where(pc.c.user_id == owner_id).scalar_subquery(), 0
    )
    page_end = bindparam("offset", type_=BigInteger) + bindparam("limit", type_=BigInteger)
    n = counted.c.n
    choice = select(n, (n * n * _FETCH_VS_ENTRY > page_end * owners).label("walk")).cte("choice")
    walk = select(choice.c.walk).scalar_subquery()
    order = _order(ordering, _PATIENT_ORDER, p.c.id)
    like = p.c.name_key.like(bindparam("b_search"), escape="/")
    # Not LIKE here: with ESCAPE, PostgreSQL rebuilds the pattern for every entry it reads
    # (like_escape of a parameter), 0.07 ms of a 480-entry walk.
    contains = func.strpos(p.c.name_key, bindparam("b_key", type_=Text)) > 0
    by_id = select(p.c.id).where(p.c.created_by == owner_id, contains, walk.is_(True))
    # As in _filtered_patients: the pieces name the owner.
    by_piece = select(p.c.id).where(
        _PATIENT_CONDITIONS["b_owner_id"].is_(True),
        _OWNER_NAME_GRAMS.contains(bindparam("b_grams")),
        like,
        walk.is_(False),
    )
    ids = union_all(
        *(
            way.order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))
            for way in (by_id, by_piece)
        )
    ).subquery("ids")
    rows = (
        select(*_PATIENT_COLUMNS, select(choice.c.n).scalar_subquery().label("total"))
        .join_from(ids, p, p.c.id == ids.c.id)
        .order_by(*order)
    )
    return rows, count


def _one_piece_search(where: PatientFilter) -> bool:
    """Whether ``where`` is a search of exactly one piece, alone, in id order."""
    if where.search is None or len(where.search) != GRAM:
        return False
    alone = PatientFilter(search=where.search, ordering=where.ordering)
    return where == alone and all(key.field == "id" for key in where.ordering)


def _patient_filter_params(where: PatientFilter) -> dict[str, Any]:
    """The bound values of the filters ``where`` gives (the others narrow nothing)."""
    values = {
        "b_search": None if where.search is None else _like(where.search),
        "b_gender": None if where.gender is None else where.gender.value,
        "b_min_age": where.min_age,
        "b_max_age": where.max_age,
        "b_created_after": where.created_after,
        "b_created_before": where.created_before,
    }
    return {name: value for name, value in values.items() if value is not None}


def _patient(row: Any) -> Patient:
    # Positional, in _PATIENT_COLUMNS' order, as _doctor.
    (id_, owner, name, age, gender, phone, email, address, notes, created, updated, version) = row[
        :12
    ]
    gender = _GENDERS.get(gender) or Gender(gender)
    return Patient(
        id_, owner, name, age, gender, phone, email, address, notes, created, updated, version
    )


def _patient_values(data: PatientData) -> dict[str, Any]:
    return {
        "name": data.name,
        "name_key": search_key(data.name),
        "age": data.age,
        "gender": data.gender.value,
        "phone": data.phone,
        "email": data.email,
        "address": data.address,
        "notes": data.notes,
    }


class SqlAlchemyPatientRepository(_Repository):
    async def add(self, owner_id: int, data: PatientData) -> Patient:
        now = _now()
        values = _patient_values(data)
        params = {"created_by": owner_id, **values, "created_at": now, "updated_at": now}
        return _patient(await self._insert_as(_INSERT_PATIENT, params))

    async def find(self, patient_id: int) -> Patient | None:
        row = (await self._db.read(_FIND_PATIENT, {"b_patient_id": patient_id})).first()
        return None if row is None else _patient(row)

    async def add_many(self, owner_id: int, rows: Sequence[PatientData]) -> Sequence[int]:
        now = _now()
        values = [
            (
                owner_id,
                data.name,
                search_key(data.name),
                data.age,
                data.gender.value,
                data.phone,
                data.email,
                data.address,
                data.notes,
                now,
                now,
            )
            for data in rows
        ]
        return await self._db.insert_many(p, _PATIENT_BULK_COLUMNS, values)

    async def batch_after(
        self, owner_id: int | None, after_id: int, limit: int
    ) -> Sequence[Patient]:
        params: dict[str, Any] = {"b_after_id": after_id, "b_limit": limit}
        statement = _PATIENTS_AFTER
        if owner_id is not None:
            statement, params["b_owner_id"] = _OWNER_PATIENTS_AFTER, owner_id
        return [_patient(row) for row in (await self._db.read(statement, params)).all()]

    async def get(self, owner_id: int, patient_id: int) -> Patient | None:
        params = {"b_patient_id": patient_id, "b_owner_id": owner_id}
        row = (await self._db.read(_GET_PATIENT, params)).first()
        return None if row is None else _patient(row)

    async def list(
        self, owner_id: int | None, page: PageRequest, where: PatientFilter = NO_PATIENT_FILTER
    ) -> Page[Patient]:
        params = {} if owner_id is None else {"b_owner_id": owner_id}
        if where.is_empty and owner_id is not None:  # its total from the owner's count row
            return await self._page(_LIST_PATIENTS, _COUNT_PATIENTS, params, page, _patient)
        values = {**params, **_patient_filter_params(where)}
        postgres = self._db.dialect_name == "postgresql"
        if where.search is not None and owner_id is not None and postgres:
            grams = _owner_grams(owner_id, where.search)
            if _one_piece_search(where):
                values.update(b_grams=grams, b_piece=grams[0], b_key=where.search)
                statement, count = _searched_by_one_piece(where.ordering)
                return await self._page(statement, count, values, page, _patient)
            if grams:
                values["b_grams"] = grams
        statement, count = _filtered_patients(frozenset(values), where.ordering)
        return await self._page(statement, count, values, page, _patient)

    async def update(
        self,
        owner_id: int,
        patient_id: int,
        data: PatientData,
        expected_version: int | None = None,
    ) -> Patient | None:
        values = _patient_values(data)
        params: dict[str, Any] = {"b_patient_id": patient_id, "b_owner_id": owner_id, **values}
        params["updated_at"] = _now()
        return await self._write(params, expected_version)

    async def _write(self, params: dict[str, Any], expected_version: int | None) -> Patient | None:
        """Set the columns ``params`` names on the patient and bump its version, in one
        statement (which takes the audit event along, as every final write does)."""
        statement = _UPDATE_PATIENT
        if expected_version is not None:
            statement, params["b_version"] = _UPDATE_PATIENT_AT_VERSION, expected_version
        row = (await self._db.write(statement, params)).first()
        if row is None:
            owner_id, patient_id = params["b_owner_id"], params["b_patient_id"]
            await self._refuse_if_elsewhere(owner_id, patient_id, expected_version)
            return None
        return _patient(row)

    async def patch(
        self,
        owner_id: int,
        patient_id: int,
        changes: PatientChanges,
        expected_version: int | None = None,
    ) -> Patient | None:
        # update's statement: SQLAlchemy sets the columns the parameters name, and only those.
        params: dict[str, Any] = {"b_patient_id": patient_id, "b_owner_id": owner_id}
        for field, value in changes.items():
            params[field] = value.value if isinstance(value, Gender) else value
        if isinstance(name := changes.get("name"), str):
            params["name_key"] = search_key(name)
        params["updated_at"] = _now()
        return await self._write(params, expected_version)

    async def delete(
        self, owner_id: int, patient_id: int, expected_version: int | None = None
    ) -> bool:
        # Its mappings go by ON DELETE CASCADE.
        params: dict[str, Any] = {"b_patient_id": patient_id, "b_owner_id": owner_id}
        statement = _DELETE_PATIENT
        if expected_version is not None:
            statement, params["b_version"] = _DELETE_PATIENT_AT_VERSION, expected_version
        if (await self._db.write(statement, params)).first() is not None:
            return True
        await self._refuse_if_elsewhere(owner_id, patient_id, expected_version)
        return False

    async def _refuse_if_elsewhere(
        self, owner_id: int, patient_id: int, expected_version: int | None
    ) -> None:
        """After a conditional write changed nothing: PreconditionFailed if the patient is
        there at another version (else it is simply not there)."""
        if expected_version is not None:
            current = await self.get(owner_id, patient_id)
            if current is not None:
                raise PreconditionFailed("Patient", patient_id, current.version)


# Doctors --------------------------------------------------------------------------------

_DOCTOR_COLUMNS = (
    d.c.id,
    d.c.created_by,
    d.c.name,
    d.c.specialization,
    d.c.email,
    d.c.phone,
    d.c.created_at,
    d.c.updated_at,
    d.c.version,
)
_THE_DOCTOR = d.c.id == bindparam("b_doctor_id")
_INSERT_DOCTOR = insert(d).returning(*_DOCTOR_COLUMNS)
_GET_DOCTOR = select(*_DOCTOR_COLUMNS).where(_THE_DOCTOR)
_DOCTORS = select(*_DOCTOR_COLUMNS).order_by(d.c.id)
# The directory's size from its count row (kept by triggers), not a count of the directory.
_COUNT_DOCTORS = select(dc.c.doctors)
_LIST_DOCTORS = _paged(_DOCTORS, _COUNT_DOCTORS)
_NEXT_DOCTOR_VERSION = {"version": d.c.version + 1}
_UPDATE_DOCTOR = (
    update(d).where(_THE_DOCTOR).values(_NEXT_DOCTOR_VERSION).returning(*_DOCTOR_COLUMNS)
)
_DELETE_DOCTOR = delete(d).where(_THE_DOCTOR).returning(d.c.id)
_AT_DOCTOR_VERSION = d.c.version == bindparam("b_version")
_UPDATE_DOCTOR_AT_VERSION = (
    update(d)
    .where(_THE_DOCTOR, _AT_DOCTOR_VERSION)
    .values(_NEXT_DOCTOR_VERSION)
    .returning(*_DOCTOR_COLUMNS)
)
_DELETE_DOCTOR_AT_VERSION = delete(d).where(_THE_DOCTOR, _AT_DOCTOR_VERSION).returning(d.c.id)


_DOCTORS_AFTER = (
    select(*_DOCTOR_COLUMNS)
    .where(d.c.id > bindparam("b_after_id"))
    .order_by(d.c.id)
    .limit(bindparam("b_limit"))
)
_DOCTOR_BULK_COLUMNS = (
    "created_by",
    "name",
    "name_key",
    "specialization",
    "specialization_key",
    "email",
    "phone",
    "created_at",
    "updated_at",
)

_DOCTOR_WIDTH = len(_DOCTOR_COLUMNS)


def _doctor(row: Any, start: int = 0) -> Doctor:
    """The doctor in ``row``, whose columns are _DOCTOR_COLUMNS from ``start`` on.

    Positional: the columns are Doctor's fields in order (a test holds them so). Keyword
    arguments made this three times slower, 59 µs against 21 for a page of 100 doctors.
    """
    return Doctor(*row[start : start + _DOCTOR_WIDTH])


_DOCTOR_ORDER = {"name": d.c.name_key, "specialization": d.c.specialization_key, "id": d.c.id}


@functools.lru_cache(maxsize=64)
def _filtered_doctors(
    search: bool, specialization: bool, ordering: tuple[SortKey, ...]
) -> tuple[Select[Any], Select[Any]]:
    """As _filtered_patients, for the directory (a scan: it is small next to the patients)."""
    where: list[Any] = []
    if search:
        pattern: Any = bindparam("b_search")
        where.append(
            or_(
                d.c.name_key.like(pattern, escape="/"),
                d.c.specialization_key.like(pattern, escape="/"),
            )
        )
    if specialization:
        where.append(d.c.specialization_key == bindparam("b_specialization"))
    rows = select(*_DOCTOR_COLUMNS).where(*where).order_by(*_order(ordering, _DOCTOR_ORDER, d.c.id))
    count = select(func.count()).select_from(d).where(*where)
    return _paged(rows, count), count


def _doctor_values(data: DoctorData) -> dict[str, Any]:
    return {
        "name": data.name,
        "name_key": search_key(data.name),
        "specialization": data.specialization,
        "specialization_key": search_key(data.specialization),
        "email": data.email,
        "phone": data.phone,
    }


class SqlAlchemyDoctorRepository(_Repository):
    async def add(self, creator_id: int, data: DoctorData) -> Doctor:
        now = _now()
        values = _doctor_values(data)
        params = {"created_by": creator_id, **values, "created_at": now, "updated_at": now}
        return _doctor(await self._insert_as(_INSERT_DOCTOR, params))

    async def add_many(self, creator_id: int, rows: Sequence[DoctorData]) -> Sequence[int]:
        now = _now()
        values = [
            (
                creator_id,
                data.name,
                search_key(data.name),
                data.specialization,
                search_key(data.specialization),
                data.email,
                data.phone,
                now,
                now,
            )
            for data in rows
        ]
        return await self._db.insert_many(d, _DOCTOR_BULK_COLUMNS, values)

    async def batch_after(self, after_id: int, limit: int) -> Sequence[Doctor]:
        params = {"b_after_id": after_id, "b_limit": limit}
        return [_doctor(row) for row in (await self._db.read(_DOCTORS_AFTER, params)).all()]

    async def get(self, doctor_id: int) -> Doctor | None:
        row = (await self._db.read(_GET_DOCTOR, {"b_doctor_id": doctor_id})).first()
        return None if row is None else _doctor(row)

    async def list(self, page: PageRequest, where: DoctorFilter = NO_DOCTOR_FILTER) -> Page[Doctor]:
        if where.is_empty:  # the plain page: its total from the directory's count row
            return await self._page(_LIST_DOCTORS, _COUNT_DOCTORS, {}, page, _doctor)
        statement, count = _filtered_doctors(
            where.search is not None, where.specialization is not None, where.ordering
        )
        params: dict[str, Any] = {}
        if where.search is not None:
            params["b_search"] = _like(where.search)
        if where.specialization is not None:
            params["b_specialization"] = where.specialization
        return await self._page(statement, count, params, page, _doctor)

    async def update(
        self, doctor_id: int, data: DoctorData, expected_version: int | None = None
    ) -> Doctor | None:
        params: dict[str, Any] = {
            "b_doctor_id": doctor_id,
            **_doctor_values(data),
            "updated_at": _now(),
        }
        statement = _UPDATE_DOCTOR
        if expected_version is not None:
            statement, params["b_version"] = _UPDATE_DOCTOR_AT_VERSION, expected_version
        row = (await self._db.write(statement, params)).first()
        if row is None:
            await self._refuse_if_elsewhere(doctor_id, expected_version)
            return None
        return _doctor(row)

    async def delete(self, doctor_id: int, expected_version: int | None = None) -> bool:
        # Its mappings go by ON DELETE CASCADE.
        params: dict[str, Any] = {"b_doctor_id": doctor_id}
        statement = _DELETE_DOCTOR
        if expected_version is not None:
            statement, params["b_version"] = _DELETE_DOCTOR_AT_VERSION, expected_version
        if (await self._db.write(statement, params)).first() is not None:
            return True
        await self._refuse_if_elsewhere(doctor_id, expected_version)
        return False

    async def _refuse_if_elsewhere(self, doctor_id: int, expected_version: int | None) -> None:
        """As the patients' (see SqlAlchemyPatientRepository)."""
        if expected_version is not None:
            current = await self.get(doctor_id)
            if current is not None:
                raise PreconditionFailed("Doctor", doctor_id, current.version)


# Mappings -------------------------------------------------------------------------------

# The mapping's own columns, then the doctor's (read by _doctor from position 4).
_MAPPING_COLUMNS = (
    m.c.id.label("mapping_id"),
    m.c.patient_id.label("mapping_patient_id"),
    m.c.created_at.label("mapping_created_at"),
    m.c.updated_at.label("mapping_updated_at"),
    *_DOCTOR_COLUMNS,
)
_WITH_DOCTOR = m.join(d, d.c.id == m.c.doctor_id)
_INSERT_MAPPING = insert(m).returning(m.c.id)
_GET_MAPPING = (
    select(*_MAPPING_COLUMNS).select_from(_WITH_DOCTOR).where(m.c.id == bindparam("b_mapping_id"))
)
# A mapping's owner_id is its patient's owner (the foreign key on the pair holds it so).
_OWNED_MAPPINGS = m.c.owner_id == bindparam("b_owner_id")
_GET_OWNED_MAPPING = (
    select(*_MAPPING_COLUMNS)
    .select_from(_WITH_DOCTOR)
    .where(m.c.id == bindparam("b_mapping_id"), _OWNED_MAPPINGS)
)
# A range of the (owner_id, id) index, and the total from the owner's count row: a page
# costs the same however many mappings the owner, or everyone, has.
_OWNER_MAPPINGS = (
    select(*_MAPPING_COLUMNS).select_from(_WITH_DOCTOR).where(_OWNED_MAPPINGS).order_by(m.c.id)
)
_COUNT_OWNER_MAPPINGS = _owners_count(mc.c.mappings)
_LIST_OWNER_MAPPINGS = _paged(_OWNER_MAPPINGS, _COUNT_OWNER_MAPPINGS)
_MAPPING_ORDER = {"id": m.c.id, "created_at": m.c.created_at}


@functools.lru_cache(maxsize=32)
def _filtered_mappings(
    patient: bool, doctor: bool, ordering: tuple[SortKey, ...]
) -> tuple[Select[Any], Select[Any]]:
    """An owner's mappings of one patient or doctor (or both), as _filtered_patients."""
    where = [_OWNED_MAPPINGS]
    if patient:
        where.append(m.c.patient_id == bindparam("b_patient_id"))
    if doctor:
        where.append(m.c.doctor_id == bindparam("b_doctor_id"))
    rows = select(*_MAPPING_COLUMNS).select_from(_WITH_DOCTOR).where(*where)
    rows = rows.order_by(*_order(ordering, _MAPPING_ORDER, m.c.id))
    count = select(func.count()).select_from(m).where(*where)
    return _paged(rows, count), count


# The patient is the owner's: checked in the same query (PostgreSQL runs an uncorrelated
# EXISTS once, before the rows).
_OWNS_PATIENT = exists().where(
    p.c.id == bindparam("b_patient_id"), p.c.created_by == bindparam("b_owner_id")
)
_OWNED_PATIENT_EXISTS: Select[Any] = select(literal_column("1")).where(_OWNS_PATIENT)
_PATIENT_MAPPINGS = (
    select(*_MAPPING_COLUMNS)
    .select_from(_WITH_DOCTOR)
    .where(m.c.patient_id == bindparam("b_patient_id"), _OWNS_PATIENT)
    .order_by(m.c.id)
)
# The total from the pair index alone: a mapping's doctor exists (foreign key), and the page
# query itself checks that the patient is the owner's.
_COUNT_PATIENT_MAPPINGS = (
    select(func.count()).select_from(m).where(m.c.patient_id == bindparam("b_patient_id"))
)
_LIST_PATIENT_MAPPINGS = _paged(_PATIENT_MAPPINGS, _COUNT_PATIENT_MAPPINGS)
# In order of assignment, like the patient's mappings.
_PATIENT_DOCTORS = (
    select(*_DOCTOR_COLUMNS)
    .select_from(_WITH_DOCTOR)
    .where(m.c.patient_id == bindparam("b_patient_id"), _OWNS_PATIENT)
    .order_by(m.c.id)
)
_LIST_PATIENT_DOCTORS = _paged(_PATIENT_DOCTORS, _COUNT_PATIENT_MAPPINGS)
_DELETE_MAPPING = delete(m).where(m.c.id == bindparam("b_mapping_id")).returning(m.c.id)


_MAPPINGS_AFTER = (
    select(*_MAPPING_COLUMNS)
    .select_from(_WITH_DOCTOR)
    .where(m.c.id > bindparam("b_after_id"))
    .order_by(m.c.id)
    .limit(bindparam("b_limit"))
)
_OWNER_MAPPINGS_AFTER = _MAPPINGS_AFTER.where(_OWNED_MAPPINGS)


def _key_shared(table: Any, key: str, *more: Any) -> Any:
    """The row with id ``key`` (and ``more`` conditions) exists, and is locked against
    deletion until commit."""
    one: Select[Any] = select(literal_column("1")).select_from(table)
    return exists(
        one.where(table.c.id == bindparam(key), *more).with_for_update(read=True, key_share=True)
    )


# PostgreSQL: a mapping is inserted and read back with its doctor in one statement, if the
# patient is the owner's. Both sides are locked first (FOR KEY SHARE, which the foreign
# keys would take anyway), so a side deleted meanwhile means no row instead of a
# foreign-key error, and an existing pair means no row instead of a unique violation: the
# transaction stays usable without a savepoint, and an empty result is told apart
# afterwards (_why_not_added).
_INSERTED_MAPPING = (
    postgresql_insert(m)
    .from_select(
        ["owner_id", "patient_id", "doctor_id", "created_at", "updated_at"],
        select(
            bindparam("b_owner_id", type_=m.c.owner_id.type),
            bindparam("b_patient_id", type_=m.c.patient_id.type),
            bindparam("b_doctor_id", type_=m.c.doctor_id.type),
            bindparam("b_now", type_=m.c.created_at.type),
            bindparam("b_now", type_=m.c.updated_at.type),
        ).where(
            _key_shared(p, "b_patient_id", p.c.created_by == bindparam("b_owner_id")),
            _key_shared(d, "b_doctor_id"),
        ),
    )
    .on_conflict_do_nothing(constraint="uq_patient_doctor_pair")
    .returning(m.c.id, m.c.patient_id, m.c.doctor_id, m.c.created_at, m.c.updated_at)
    .cte("inserted")
)
_ADD_MAPPING = select(
    _INSERTED_MAPPING.c.id.label("mapping_id"),
    _INSERTED_MAPPING.c.patient_id.label("mapping_patient_id"),
    _INSERTED_MAPPING.c.created_at.label("mapping_created_at"),
    _INSERTED_MAPPING.c.updated_at.label("mapping_updated_at"),
    *_DOCTOR_COLUMNS,
).select_from(_INSERTED_MAPPING.join(d, d.c.id == _INSERTED_MAPPING.c.doctor_id))


def _mapping(row: Any) -> Mapping:
    # Positional, as _doctor: id, patient_id, the doctor, created_at, updated_at.
    return Mapping(row[0], row[1], _doctor(row, 4), row[2], row[3])


class SqlAlchemyMappingRepository(_Repository):
    async def _owns(self, owner_id: int, patient_id: int) -> bool:
        params = {"b_patient_id": patient_id, "b_owner_id": owner_id}
        return (await self._db.read(_OWNED_PATIENT_EXISTS, params)).first() is not None

    async def add(self, owner_id: int, patient_id: int, doctor_id: int) -> Mapping:
        if self._db.dialect_name == "postgresql":
            params = {
                "b_owner_id": owner_id,
                "b_patient_id": patient_id,
                "b_doctor_id": doctor_id,
                "b_now": _now(),
            }
            row = (await self._db.write(_ADD_MAPPING, params)).first()
            if row is None:
                raise await self._why_not_added(owner_id, patient_id, doctor_id)
            return _mapping(row)
        if not await self._owns(owner_id, patient_id):
            self._db.refused_final_write()
            raise NotFound("Patient", patient_id)
        now = _now()
        params = {
            "owner_id": owner_id,
            "patient_id": patient_id,
            "doctor_id": doctor_id,
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self._db.savepoint():  # see SqlAlchemyUserRepository.add
                mapping_id = (await self._db.write(_INSERT_MAPPING, params)).scalar_one()
        except IntegrityError as error:
            kind, _ = _violation(error)
            if kind == _UNIQUE:
                raise Conflict(ALREADY_ASSIGNED) from None
            if kind == _FOREIGN_KEY:
                # SQLite does not say which side vanished; one more query (only on this
                # rare path) tells.
                doctor = {"b_doctor_id": doctor_id}
                if (await self._db.read(_GET_DOCTOR, doctor)).first() is None:
                    raise NotFound("Doctor", doctor_id) from None
                raise NotFound("Patient", patient_id) from None
            raise
        params = {"b_mapping_id": mapping_id}
        return _mapping((await self._db.read(_GET_MAPPING, params)).one())

    async def _why_not_added(self, owner_id: int, patient_id: int, doctor_id: int) -> Exception:
        """After _ADD_MAPPING inserted nothing (a rare path): the patient is not the owner's,
        the doctor does not exist, or the pair exists."""
        if not await self._owns(owner_id, patient_id):
            return NotFound("Patient", patient_id)
        if (await self._db.read(_GET_DOCTOR, {"b_doctor_id": doctor_id})).first() is None:
            return NotFound("Doctor", doctor_id)
        return Conflict(ALREADY_ASSIGNED)

    async def batch_after(
        self, owner_id: int | None, after_id: int, limit: int
    ) -> Sequence[Mapping]:
        params: dict[str, Any] = {"b_after_id": after_id, "b_limit": limit}
        statement = _MAPPINGS_AFTER
        if owner_id is not None:
            statement, params["b_owner_id"] = _OWNER_MAPPINGS_AFTER, owner_id
        return [_mapping(row) for row in (await self._db.read(statement, params)).all()]

    async def get(self, owner_id: int, mapping_id: int) -> Mapping | None:
        params = {"b_mapping_id": mapping_id, "b_owner_id": owner_id}
        row = (await self._db.read(_GET_OWNED_MAPPING, params)).first()
        return None if row is None else _mapping(row)

    async def list_for_owner(
        self, owner_id: int, page: PageRequest, where: MappingFilter = NO_MAPPING_FILTER
    ) -> Page[Mapping]:
        params: dict[str, Any] = {"b_owner_id": owner_id}
        if where.is_empty:
            return await self._page(
                _LIST_OWNER_MAPPINGS, _COUNT_OWNER_MAPPINGS, params, page, _mapping
            )
        statement, count = _filtered_mappings(
            where.patient_id is not None, where.doctor_id is not None, where.ordering
        )
        if where.patient_id is not None:
            params["b_patient_id"] = where.patient_id
        if where.doctor_id is not None:
            params["b_doctor_id"] = where.doctor_id
        return await self._page(statement, count, params, page, _mapping)

    async def list_for_patient(
        self, owner_id: int, patient_id: int, page: PageRequest
    ) -> Page[Mapping] | None:
        return await self._owned_page(_LIST_PATIENT_MAPPINGS, owner_id, patient_id, page, _mapping)

    async def doctors_of_patient(
        self, owner_id: int, patient_id: int, page: PageRequest
    ) -> Page[Doctor] | None:
        return await self._owned_page(_LIST_PATIENT_DOCTORS, owner_id, patient_id, page, _doctor)

    async def _owned_page(
        self,
        statement: Select[Any],
        owner_id: int,
        patient_id: int,
        page: PageRequest,
        convert: Callable[[Any], T],
    ) -> Page[T] | None:
        """A page of a patient's rows, the ownership checked by the same query: rows mean
        it is the owner's; only an empty page asks separately."""
        params = {"b_patient_id": patient_id, "b_owner_id": owner_id}
        found = await self._page(statement, _COUNT_PATIENT_MAPPINGS, params, page, convert)
        if not found.items and not await self._owns(owner_id, patient_id):
            return None
        return found

    async def delete(self, mapping_id: int) -> bool:
        params = {"b_mapping_id": mapping_id}
        return (await self._db.write(_DELETE_MAPPING, params)).first() is not None


# Refresh sessions -----------------------------------------------------------------------

_SESSION_COLUMNS = (rs.c.id, rs.c.user_id, rs.c.current_jti, rs.c.created_at, rs.c.revoked_at)
_THE_SESSION = rs.c.id == bindparam("b_session_id")
_INSERT_SESSION = insert(rs)
_GET_SESSION = select(*_SESSION_COLUMNS).where(_THE_SESSION)
# One conditional statement: of two racing refreshes, the second finds the jti changed.
_ROTATABLE = (
    _THE_SESSION,
    rs.c.user_id == bindparam("b_user_id"),
    rs.c.current_jti == bindparam("b_spent_jti"),
    rs.c.revoked_at.is_(None),
)
# PostgreSQL checks the account and returns it in the same statement (UPDATE ... FROM).
# SQLite's RETURNING may not name another table, so it returns the id and reads the user.
_ROTATE_SESSION_RETURNING_USER = (
    update(rs)
    .where(*_ROTATABLE, u.c.id == rs.c.user_id, u.c.is_active.is_(True))
    .returning(*_USER_COLUMNS)
)
_ROTATE_SESSION = (
    update(rs)
    .where(
        *_ROTATABLE,
        exists(select(u.c.id).where(u.c.id == rs.c.user_id, u.c.is_active.is_(True))),
    )
    .returning(rs.c.user_id)
)
_REVOKE_SESSION = update(rs).where(_THE_SESSION, rs.c.revoked_at.is_(None))
_REVOKE_USER_SESSIONS = update(rs).where(
    rs.c.user_id == bindparam("b_user_id"), rs.c.revoked_at.is_(None)
)
# The user's access tokens too: a "not before" that every worker learns (revocation_feed).
_pg_not_before = postgresql_insert(tables.token_revocation)
_sqlite_not_before = sqlite_insert(tables.token_revocation)
_NOT_BEFORE = {
    "postgresql": _pg_not_before.on_conflict_do_update(
        index_elements=["user_id"], set_={"not_before": _pg_not_before.excluded.not_before}
    ),
    "sqlite": _sqlite_not_before.on_conflict_do_update(
        index_elements=["user_id"], set_={"not_before": _sqlite_not_before.excluded.not_before}
    ),
}
# Delivered to every listening worker when (and only if) the transaction commits.
_ANNOUNCE = select(func.pg_notify(REVOCATION_CHANNEL, bindparam("payload")))


class SqlAlchemyRefreshSessionRepository(_Repository):
    async def add(self, session: RefreshSession) -> None:
        params = {
            "id": session.id,
            "user_id": session.user_id,
            "current_jti": session.current_jti,
            "created_at": session.created_at,
            "revoked_at": session.revoked_at,
        }
        await self._db.write(_INSERT_SESSION, params)

    async def get(self, session_id: str) -> RefreshSession | None:
        row: Any = (await self._db.read(_GET_SESSION, {"b_session_id": session_id})).first()
        if row is None:
            return None
        (id_, user_id, current_jti, created, revoked) = row[:5]
        return RefreshSession(
            id=id_, user_id=user_id, current_jti=current_jti, created_at=created, revoked_at=revoked
        )

    async def rotate(
        self, session_id: str, user_id: int, spent_jti: str, next_jti: str
    ) -> User | None:
        params = {
            "b_session_id": session_id,
            "b_user_id": user_id,
            "b_spent_jti": spent_jti,
            "current_jti": next_jti,
        }
        if self._db.dialect_name == "postgresql":
            row = (await self._db.write(_ROTATE_SESSION_RETURNING_USER, params)).first()
            return None if row is None else _user(row)
        if (await self._db.write(_ROTATE_SESSION, params)).first() is None:
            return None
        row = (await self._db.read(_GET_USER, {"user_id": user_id})).one()
        return _user(row)

    async def revoke(self, session_id: str, when: datetime) -> None:
        params = {"b_session_id": session_id, "revoked_at": when}
        await self._db.write(_REVOKE_SESSION, params)

    async def revoke_all_for_user(self, user_id: int, when: datetime) -> None:
        params = {"b_user_id": user_id, "revoked_at": when}
        await self._db.write(_REVOKE_USER_SESSIONS, params)
        dialect = self._db.dialect_name
        await self._db.write(_NOT_BEFORE[dialect], {"user_id": user_id, "not_before": when})
        if dialect == "postgresql":
            payload = announcement(user_id, when)
            await self._db.write(_ANNOUNCE, {"payload": payload})


__all__ = [
    "SqlAlchemyDoctorRepository",
    "SqlAlchemyMappingRepository",
    "SqlAlchemyPatientRepository",
    "SqlAlchemyRefreshSessionRepository",
    "SqlAlchemyUserRepository",
]
