"""Paging of list routes: the query parameters that choose a page, and the response headers.

A client pages by ``limit`` and ``offset``, or by DRF's ``page`` (from 1) and ``page_size``.
Either way the response is a JSON array with ``X-Total-Count`` and RFC 8288 ``Link`` headers
(``rel="next"``, ``rel="prev"``) whose URLs page the way the client did, keeping every other
query parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.datastructures import ResponseHeader
from litestar.di import Provide
from litestar.exceptions import ValidationException
from litestar.params import Parameter

from healthcare.application.paging import MAX_LIMIT, Page, PageRequest
from healthcare.entrypoints.http.schemas import MAX_ID

T = TypeVar("T")
Out = TypeVar("Out")

_PAGING_PARAMETERS = frozenset({"limit", "offset", "page", "page_size"})
# The last page whose offset, (page - 1) * page_size, is still an offset we accept.
MAX_PAGE = MAX_ID // MAX_LIMIT + 1

Limit = Annotated[
    int,
    Parameter(
        ge=1, le=MAX_LIMIT, description="Items per page (at most 1000; default DEFAULT_PAGE_SIZE)"
    ),
]
Offset = Annotated[int, Parameter(ge=0, le=MAX_ID, description="Items to skip (not with page)")]
PageNumber = Annotated[
    int,
    Parameter(
        ge=1,
        le=MAX_PAGE,
        description="DRF-style paging: the page, counted from 1 (not with offset)",
    ),
]
PageSize = Annotated[
    int,
    Parameter(
        ge=1,
        le=MAX_LIMIT,
        description="DRF-style paging: items per page, the same as limit (at most 1000; "
        "default DEFAULT_PAGE_SIZE; with limit, only the same value)",
    ),
]

PAGING_HEADERS = [
    ResponseHeader(
        name="X-Total-Count", description="How many items there are in all", documentation_only=True
    ),
    ResponseHeader(
        name="Link",
        description='RFC 8288 links with rel="next" and rel="prev"',
        documentation_only=True,
        required=False,
    ),
]


def page_request_dependency(default_size: int) -> Provide:
    """The page a list route returns, ``default_size`` items unless the client says."""

    def page_request(
        request: Request[Any, Any, Any],
        limit: Limit = default_size,
        offset: Offset = 0,
        page: PageNumber = 1,
        page_size: PageSize = default_size,
    ) -> PageRequest:
        if not _may_page_by_number(request):
            return PageRequest(limit=limit, offset=offset)  # limit and offset, or defaults
        # Which parameters were given, not just their values: `page_size=50` alone is not
        # a contradiction of the default limit.
        given = request.query_params
        _refuse_contradictions(given, limit=limit, page_size=page_size)
        size = page_size if "page_size" in given else limit
        if _by_page_number(given):
            return PageRequest(limit=size, offset=(page - 1) * size)
        return PageRequest(limit=size, offset=offset)

    return Provide(page_request, sync_to_thread=False)


def _may_page_by_number(request: Request[Any, Any, Any]) -> bool:
    """Whether ``page`` or ``page_size`` may be among the parameters, from the raw query
    (an escape may spell either): when not, neither numbering nor a contradiction is
    possible, and the query is not parsed again."""
    raw = request.scope["query_string"]
    return b"page" in raw or b"%" in raw


def _by_page_number(given: Container[str]) -> bool:
    """Whether the client pages DRF's way: ``page``, or ``page_size`` without ``offset``."""
    return "page" in given or ("page_size" in given and "offset" not in given)


def _refuse_contradictions(given: Container[str], *, limit: int, page_size: int) -> None:
    problems: list[dict[str, str]] = []
    if "page" in given and "offset" in given:
        problems += [
            {"key": "page", "message": "cannot be combined with offset: use one or the other"},
            {"key": "offset", "message": "cannot be combined with page: use one or the other"},
        ]
    if "page_size" in given and "limit" in given and page_size != limit:
        problems += [
            {"key": "page_size", "message": "differs from limit: give one, or the same value"},
            {"key": "limit", "message": "differs from page_size: give one, or the same value"},
        ]
    if problems:
        raise ValidationException("Contradictory paging parameters", extra=problems)


def paged_response(
    request: Request[Any, Any, Any],
    page: Page[T],
    asked: PageRequest,
    convert: Callable[[T], Out],
) -> Response[list[Out]]:
    headers = {"X-Total-Count": str(page.total)}
    links = []
    has_next = asked.offset + asked.limit < page.total
    if _may_page_by_number(request) and _by_page_number(request.query_params):
        number = asked.offset // asked.limit + 1
        if has_next:
            links.append(_link(request, "next", page=number + 1, page_size=asked.limit))
        if number > 1:
            links.append(_link(request, "prev", page=number - 1, page_size=asked.limit))
    else:
        if has_next:
            links.append(
                _link(request, "next", limit=asked.limit, offset=asked.offset + asked.limit)
            )
        if asked.offset > 0:
            previous = max(asked.offset - asked.limit, 0)
            links.append(_link(request, "prev", limit=asked.limit, offset=previous))
    if links:
        headers["Link"] = ", ".join(links)
    return Response([convert(item) for item in page.items], headers=headers)


def _link(request: Request[Any, Any, Any], rel: str, **paging: int) -> str:
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in _PAGING_PARAMETERS]
    query += [(name, str(value)) for name, value in paging.items()]
    url = request.url.with_replacements(query=urlencode(query))
    return f'<{url}>; rel="{rel}"'
