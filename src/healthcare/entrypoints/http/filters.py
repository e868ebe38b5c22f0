"""Query parameters that search, filter and order lists, as Litestar dependencies.

Litestar checks each parameter's type and bounds (a 400 naming it); the domain's listing
rules check the rest (min_age above max_age, an ordering field not on the list...), every bad
parameter at once. Parameters nobody knows are ignored, as DRF ignores them. The OpenAPI
document lists each, with its type and allowed values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar.di import Provide
from litestar.params import Parameter

from healthcare.domain import listing
from healthcare.domain.entities import Gender
from healthcare.domain.listing import DoctorFilter, MappingFilter, PatientFilter
from healthcare.domain.rules import AGE_MAX, AGE_MIN
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
)
_GENDER_PATTERN = (
    "^(?:" + "|".join("".join(f"[{c.upper()}{c.lower()}]" for c in g.value) for g in Gender) + ")$"
)


def patient_filter(  # noqa: PLR0917 - one parameter per query parameter, as Litestar reads them
    search: Annotated[str | None, _SEARCH] = None,
    gender: Annotated[
        str | None,
        Parameter(
            description="Male, Female, Other or Unknown, in any letter case",
            pattern=_GENDER_PATTERN,
        ),
    ] = None,
    min_age: Annotated[int | None, Parameter(ge=AGE_MIN, le=AGE_MAX)] = None,
    max_age: Annotated[int | None, Parameter(ge=AGE_MIN, le=AGE_MAX)] = None,
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
        ),
    ] = None,
    specialization: Annotated[
        str | None,
        Parameter(
            description="The whole specialization, ignoring case and accents",
            max_length=listing.SEARCH_MAX,
        ),
    ] = None,
    ordering: Annotated[str | None, _ordering(listing.DOCTOR_ORDERING)] = None,
) -> DoctorFilter:
    return listing.doctor_filter(search=search, specialization=specialization, ordering=ordering)


def mapping_filter(
    patient: Annotated[
        int | None, Parameter(gt=0, le=MAX_ID, description="Only this patient's mappings")
    ] = None,
    doctor: Annotated[
        int | None, Parameter(gt=0, le=MAX_ID, description="Only this doctor's mappings")
    ] = None,
    ordering: Annotated[str | None, _ordering(listing.MAPPING_ORDERING)] = None,
) -> MappingFilter:
    return listing.mapping_filter(patient_id=patient, doctor_id=doctor, ordering=ordering)


PATIENT_FILTER = {"patient_filter": Provide(patient_filter, sync_to_thread=False)}
DOCTOR_FILTER = {"doctor_filter": Provide(doctor_filter, sync_to_thread=False)}
MAPPING_FILTER = {"mapping_filter": Provide(mapping_filter, sync_to_thread=False)}
