"""The audit trail, for administrators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import Parameter

from healthcare.application.audit import ListAuditEvents
from healthcare.application.paging import PageRequest
from healthcare.domain.audit import AuditAction, AuditOutcome, AuditQuery, ResourceType
from healthcare.domain.entities import Principal
from healthcare.entrypoints.http.filters import refuse_lenient_values
from healthcare.entrypoints.http.openapi import BEARER, problems
from healthcare.entrypoints.http.paging import PAGING_HEADERS, paged_response
from healthcare.entrypoints.http.schemas import MAX_ID, AuditEventOut


@get(
    "/api/audit",
    security=BEARER,
    summary="The audit trail, newest first (administrators only)",
    tags=["audit"],
    response_headers=PAGING_HEADERS,
    responses=problems(400, 401, 403),
)
async def audit_trail(
    request: Request[Any, Any, Any],
    *,
    principal: NamedDependency[Principal],
    page_request: NamedDependency[PageRequest],
    list_audit_events: NamedDependency[ListAuditEvents],
    user_id: Annotated[
        int | None, Parameter(ge=1, le=MAX_ID, description="Events of this user")
    ] = None,
    resource_type: Annotated[ResourceType | None, Parameter(description="Kind of resource")] = None,
    resource_id: Annotated[
        int | None, Parameter(ge=1, le=MAX_ID, description="Id of the resource")
    ] = None,
    action: Annotated[AuditAction | None, Parameter(description="What was done")] = None,
    outcome: Annotated[AuditOutcome | None, Parameter(description="How it ended")] = None,
    since: Annotated[
        datetime | None, Parameter(description="From this time (ISO 8601; UTC if no offset)")
    ] = None,
    until: Annotated[
        datetime | None, Parameter(description="Before this time (ISO 8601; UTC if no offset)")
    ] = None,
) -> Response[list[AuditEventOut]]:
    refuse_lenient_values(
        request,
        *("user_id", "resource_type", "resource_id", "action", "outcome"),
        times=("since", "until"),
    )
    query = AuditQuery(
        user_id=user_id,
        resource_type=resource_type,
        resource_id=resource_id,
        action=action,
        outcome=outcome,
        since=_utc(since),
        until=_utc(until),
    )
    page = await list_audit_events(principal, query, page_request)
    return paged_response(request, page, page_request, AuditEventOut.of)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


HANDLERS = [audit_trail]
