"""Query parameters that search, filter and order lists, as Litestar dependencies.

Litestar checks each parameter's type and bounds (a 400 naming it); the domain's listing
rules check the rest (min_age above max_age, an ordering field not on the list...), every bad
parameter at once. Parameters nobody knows are ignored, as DRF ignores them. The OpenAPI
document lists each, with its type and allowed values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.params import Parameter

from healthcare.domain import listing
from healthcare.domain.errors import FieldError, InvalidInput
from healthcare.domain.listing import (
    NO_DOCTOR_FILTER,
    NO_MAPPING_FILTER,
    NO_PATIENT_FILTER,
    DoctorFilter,
    MappingFilter,
    PatientFilter,
)
from healthcare.domain.rules import AGE_MAX, AGE_MIN, GENDER_PATTERN, TEXT_PATTERN
from healthcare.entrypoints.http.dependencies import OptionalQuery
from healthcare.entrypoints.http.schemas import MAX_ID


def _ordering_pattern(fields: tuple[str, ...]) -> str:
    one = "-?(?:" + "|".join(fields) + ")"
    return f"^{one}(?:,{one})*$"


def _ordering(fields: tuple[str, ...]) -> Any:
    return Parameter(
        description="Comma-separated fields to order by, - before one for descending (each "
        f"once); ties by id. One of: {', '.join(fields)}",
        pattern=_ordering_pattern(fields),
    )


_SEARCH = Parameter(
    description="Part of the name, ignoring letter case and accents",
    max_length=listing.SEARCH_MAX,
    pattern=TEXT_PATTERN,
)


def refuse_lenient_values(
    request: Request[Any, Any, Any], *names: str, times: tuple[str, ...] = ()
) -> None:
    """Refuse what Litestar's lenient reading of query text lets through.

    Litestar converts query text with msgspec's ``strict=False``, which reads "null" (in
    any letter case) as None for an ``X | None`` parameter, dropping the filter without a
    word, and a number as a Unix time for a datetime. A query string cannot say null
    (leaving the parameter out says none), and a time here is ISO 8601 text.
    """
    raw = request.scope["query_string"].lower()
    if b"null" not in raw and b"%" not in raw and not any(t.encode() in raw for t in times):
        return  # no text it could refuse (the usual list): the query is not even parsed
    query = request.query_params
    errors = [
        FieldError(name, "must be a value (leave the parameter out for none), not null")
        for name in names
        if any(value.lower() == "null" for value in query.getall(name, []))
    ]
    for name in times:
        for value in query.getall(name, []):
            try:
                msgspec.convert(value, datetime)  # strict: ISO 8601 text only
            except msgspec.ValidationError:
                errors.append(FieldError(name, "must be a date and time in ISO 8601"))
                break
    if errors:
        raise InvalidInput(errors)


# Litestar leaves a bound of 0 out of the document (it tests the bound's truth), so the
# minimum of an age is stated again here.
_AGE = Parameter(ge=AGE_MIN, le=AGE_MAX, schema_extra={"minimum": AGE_MIN})


def patient_filter(  # noqa: PLR0917 - one parameter per query parameter, as Litestar reads them
    request: Request[Any, Any, Any],
    search: Annotated[str | None, _SEARCH] = None,
    gender: Annotated[
        str | None,
        Parameter(
            description="Male, Female, Other or Unknown, in any letter case",
            pattern=GENDER_PATTERN,
        ),
    ] = None,
    min_age: Annotated[int | None, _AGE] = None,
    max_age: Annotated[int | None, _AGE] = None,
    created_after: Annotated[
        datetime | None,
        Parameter(description="ISO 8601 (UTC without an offset); created later than this"),
    ] = None,
    created_before: Annotated[
        datetime | None,
        Parameter(description="ISO 8601 (UTC without an offset); created earlier than this"),
    ] = None,
    ordering: Annotated[str | None, _ordering(listing.PATIENT_ORDERING)] = None,
) -> PatientFilter:
    refuse_lenient_values(request, "min_age", "max_age", times=("created_after", "created_before"))
    return listing.patient_filter(
        search=search,
        gender=gender,
        min_age=min_age,
        max_age=max_age,
        created_after=created_after,
        created_before=created_before,
        ordering=ordering,
    )


def doctor_filter(
    search: Annotated[
        str | None,
        Parameter(
            description="Part of the name or the specialization, ignoring case and accents",
            max_length=listing.SEARCH_MAX,
            pattern=TEXT_PATTERN,
        ),
    ] = None,
    specialization: Annotated[
        str | None,
        Parameter(
            description="The whole specialization, ignoring case and accents",
            max_length=listing.SEARCH_MAX,
            pattern=TEXT_PATTERN,
        ),
    ] = None,
    ordering: Annotated[str | None, _ordering(listing.DOCTOR_ORDERING)] = None,
) -> DoctorFilter:
    return listing.doctor_filter(search=search, specialization=specialization, ordering=ordering)


def mapping_filter(
    request: Request[Any, Any, Any],
    patient: Annotated[
        int | None, Parameter(ge=1, le=MAX_ID, description="Only this patient's mappings")
    ] = None,
    doctor: Annotated[
        int | None, Parameter(ge=1, le=MAX_ID, description="Only this doctor's mappings")
    ] = None,
    ordering: Annotated[str | None, _ordering(listing.MAPPING_ORDERING)] = None,
) -> MappingFilter:
    refuse_lenient_values(request, "patient", "doctor")
    return listing.mapping_filter(patient_id=patient, doctor_id=doctor, ordering=ordering)


PATIENT_FILTER = {"patient_filter": OptionalQuery(patient_filter, none_given=NO_PATIENT_FILTER)}
DOCTOR_FILTER = {"doctor_filter": OptionalQuery(doctor_filter, none_given=NO_DOCTOR_FILTER)}
MAPPING_FILTER = {"mapping_filter": OptionalQuery(mapping_filter, none_given=NO_MAPPING_FILTER)}
