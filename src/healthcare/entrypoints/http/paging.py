"""List responses: a JSON array, with X-Total-Count and RFC 8288 Link headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.datastructures import ResponseHeader

from healthcare.application.paging import Page, PageRequest

T = TypeVar("T")
Out = TypeVar("Out")

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


def paged_response(
    request: Request[Any, Any, Any],
    page: Page[T],
    asked: PageRequest,
    convert: Callable[[T], Out],
) -> Response[list[Out]]:
    headers = {"X-Total-Count": str(page.total)}
    links = []
    if asked.offset + asked.limit < page.total:
        links.append(_link(request, asked.limit, asked.offset + asked.limit, "next"))
    if asked.offset > 0:
        links.append(_link(request, asked.limit, max(asked.offset - asked.limit, 0), "prev"))
    if links:
        headers["Link"] = ", ".join(links)
    return Response([convert(item) for item in page.items], headers=headers)


def _link(request: Request[Any, Any, Any], limit: int, offset: int, rel: str) -> str:
    query = {k: v for k, v in request.query_params.items() if k not in {"limit", "offset"}}
    query.update(limit=str(limit), offset=str(offset))
    url = request.url.with_replacements(query=urlencode(query))
    return f'<{url}>; rel="{rel}"'
