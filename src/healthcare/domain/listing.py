"""What a list is narrowed to and ordered by: search, filters and ordering, with their rules.

Every entrypoint builds these through the functions here, so a bad value is refused the same
way everywhere, naming the parameter, and every bad parameter at once.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from healthcare.domain.entities import Gender
from healthcare.domain.errors import FieldError, InvalidInput
from healthcare.domain.rules import AGE_MAX, AGE_MIN, NAME_MAX, identity_key
from healthcare.domain.values import value_object

PATIENT_ORDERING = ("name", "age", "created_at", "updated_at", "id")
DOCTOR_ORDERING = ("name", "specialization", "id")
MAPPING_ORDERING = ("id", "created_at")
SEARCH_MAX = NAME_MAX


@value_object
class SortKey:
    field: str
    descending: bool = False


@value_object
class PatientFilter:
    """Patients whose name contains ``search`` (ignoring case and accents), and so on; every
    field left None does not narrow. Ordered by ``ordering``, then by id."""

    search: str | None = None  # already a search_key
    gender: Gender | None = None
    min_age: int | None = None
    max_age: int | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    ordering: tuple[SortKey, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self is NO_PATIENT_FILTER or self == NO_PATIENT_FILTER  # (is: the usual, cheaply)


@value_object
class DoctorFilter:
    """Doctors whose name or specialization contains ``search``; ``specialization`` is an
    exact match (both ignoring case and accents)."""

    search: str | None = None  # a search_key
    specialization: str | None = None  # a search_key
    ordering: tuple[SortKey, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self is NO_DOCTOR_FILTER or self == NO_DOCTOR_FILTER  # (is: the usual, cheaply)


@value_object
class MappingFilter:
    patient_id: int | None = None
    doctor_id: int | None = None
    ordering: tuple[SortKey, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self is NO_MAPPING_FILTER or self == NO_MAPPING_FILTER  # (is: the usual, cheaply)


@value_object
class UserFilter:
    """Accounts whose username or email contains ``search`` (ignoring case), with the staff
    and active flags asked for; ordered by id."""

    search: str | None = None  # an identity_key
    is_staff: bool | None = None
    is_active: bool | None = None


NO_USER_FILTER = UserFilter()
NO_PATIENT_FILTER = PatientFilter()
NO_DOCTOR_FILTER = DoctorFilter()
NO_MAPPING_FILTER = MappingFilter()
_NONE_OF_7 = (None,) * 7


def search_key(text: str) -> str:
    """The form in which names are searched and ordered: compatibility-decomposed, without
    combining marks (accents), case-folded. Computed here, not in SQL, so that PostgreSQL,
    SQLite and the memory adapter agree on every letter."""
    if text.isascii():
        # The same answer, ten times faster (a bulk import computes one per record): ASCII
        # has nothing to decompose or drop, and its case-folding is lower-casing.
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", bare.casefold())


def parse_ordering(raw: str | None, allowed: Sequence[str]) -> tuple[SortKey, ...]:
    """``name,-age``: fields from ``allowed``, ``-`` for descending, each at most once."""
    if raw is None or not raw.strip():
        return ()
    keys: list[SortKey] = []
    for item in raw.split(","):
        name = item.strip()
        descending = name.startswith("-")
        name = name.removeprefix("-")
        if name not in allowed or any(key.field == name for key in keys):
            choices = ", ".join(allowed)
            raise InvalidInput.single(
                "ordering", f"must list fields among {choices} (each once, - for descending)"
            )
        keys.append(SortKey(name, descending))
    return tuple(keys)


def patient_filter(
    *,
    search: str | None = None,
    gender: str | None = None,
    min_age: int | None = None,
    max_age: int | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    ordering: str | None = None,
) -> PatientFilter:
    if (search, gender, min_age, max_age, created_after, created_before, ordering) == _NONE_OF_7:
        return NO_PATIENT_FILTER  # the usual list: nothing to check
    errors: list[FieldError] = []
    parsed_gender = None
    if gender is not None:
        try:
            parsed_gender = Gender.parse(gender)
        except InvalidInput as error:
            errors += error.errors
    for name, age in (("min_age", min_age), ("max_age", max_age)):
        if age is not None and not AGE_MIN <= age <= AGE_MAX:
            errors.append(FieldError(name, f"must be between {AGE_MIN} and {AGE_MAX}"))
    if min_age is not None and max_age is not None and min_age > max_age:
        errors.append(FieldError("min_age", "must not be greater than max_age"))
    # A time without a zone is UTC, as the audit trail's filters read it.
    created_after, created_before = _utc(created_after), _utc(created_before)
    if (
        created_after is not None
        and created_before is not None
        and not errors
        and created_after >= created_before
    ):
        errors.append(FieldError("created_before", "must be later than created_after"))
    keys = _collect(errors, lambda: parse_ordering(ordering, PATIENT_ORDERING))
    found = _search(errors, search)
    if errors:
        raise InvalidInput(errors)
    return PatientFilter(
        found, parsed_gender, min_age, max_age, created_after, created_before, keys
    )


def doctor_filter(
    *, search: str | None = None, specialization: str | None = None, ordering: str | None = None
) -> DoctorFilter:
    if search is None and specialization is None and ordering is None:
        return NO_DOCTOR_FILTER
    errors: list[FieldError] = []
    keys = _collect(errors, lambda: parse_ordering(ordering, DOCTOR_ORDERING))
    found = _search(errors, search)
    exact = _search(errors, specialization, "specialization")
    if errors:
        raise InvalidInput(errors)
    return DoctorFilter(found, exact, keys)


def mapping_filter(
    *, patient_id: int | None = None, doctor_id: int | None = None, ordering: str | None = None
) -> MappingFilter:
    if patient_id is None and doctor_id is None and ordering is None:
        return NO_MAPPING_FILTER
    errors: list[FieldError] = []
    keys = _collect(errors, lambda: parse_ordering(ordering, MAPPING_ORDERING))
    for name, value in (("patient", patient_id), ("doctor", doctor_id)):
        if value is not None and value <= 0:
            errors.append(FieldError(name, "must be a positive id"))
    if errors:
        raise InvalidInput(errors)
    return MappingFilter(patient_id, doctor_id, keys)


def user_filter(
    *, search: str | None = None, is_staff: bool | None = None, is_active: bool | None = None
) -> UserFilter:
    errors: list[FieldError] = []
    found = _search(errors, search)
    if errors:
        raise InvalidInput(errors)
    # Usernames and emails are compared by identity_key; search them the same way.
    return UserFilter(
        None if search is None or found is None else identity_key(search.strip()),
        is_staff,
        is_active,
    )


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _collect(
    errors: list[FieldError], parse: Callable[[], tuple[SortKey, ...]]
) -> tuple[SortKey, ...]:
    try:
        keys: tuple[SortKey, ...] = parse()
    except InvalidInput as error:
        errors += error.errors
        return ()
    return keys


def _search(errors: list[FieldError], text: str | None, field: str = "search") -> str | None:
    if text is None or not text.strip():
        return None  # an empty search narrows nothing
    if "\x00" in text or len(text) > SEARCH_MAX:
        errors.append(FieldError(field, f"must be at most {SEARCH_MAX} characters, no NUL"))
        return None
    return search_key(text.strip())
