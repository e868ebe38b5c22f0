"""Versions as entity-tags (RFC 9110): ETag out, If-Match and If-None-Match in.

A patient's or doctor's ETag is its version, quoted: ``"3"``. It is strong: every change
bumps the version, and nothing else changes the representation.

- ``If-Match`` on PUT, PATCH and DELETE: one entity-tag (or ``*``). The change is made only
  if it is the current version, checked in the statement that writes; otherwise 412 and
  nothing changes. A weak tag (``W/"3"``) never matches, as strong comparison requires.
- ``If-None-Match`` on GET: a list of tags (or ``*``), compared weakly; if one is the current
  version, 304 without a body (the read is still audited: it disclosed that the record is
  unchanged).

The headers are read straight from the scope, as the Bearer token is: request.headers would
parse every header of every read for the few that carry these.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from litestar import Request, Response
from litestar.datastructures import ResponseHeader
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPI, OpenAPIType, Parameter, Schema

from healthcare.domain.errors import InvalidInput
from healthcare.domain.rules import SPACES

T = TypeVar("T")

IF_MATCH = b"if-match"
IF_NONE_MATCH = b"if-none-match"
# No record is at this version (they start at 1): what a tag that is not one of ours means.
NO_VERSION = 0
_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e]*)"\s*')
# What If-Match may be, as the document states it: one entity-tag, or *.
IF_MATCH_PATTERN = f'^[{SPACES}]*(?:\\*|(?:W/)?"[\\x21\\x23-\\x7e]*")[{SPACES}]*$'
_MAX_VERSION_DIGITS = 18  # within a BIGINT


ETAG_HEADERS = [
    ResponseHeader(
        name="ETag",
        description='The record\'s version, quoted ("3"): send it back in If-Match to change '
        "the record only if nobody else has since, or in If-None-Match to be told 304.",
        documentation_only=True,
    )
]
NOT_MODIFIED: dict[int, ResponseSpec] = {
    304: ResponseSpec(
        data_container=None,
        description="If-None-Match named the current version: no body, as the one you hold",
    )
}


def etag(version: int) -> str:
    return f'"{version}"'


def versioned(body: T | None, version: int, status_code: int = 200) -> Response[T]:
    """A response that carries the record's version as its ETag."""
    return Response(body, status_code=status_code, headers={"ETag": etag(version)})  # type: ignore[arg-type]


def _header(request: Request[Any, Any, Any], name: bytes) -> str | None:
    for key, value in request.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _tags(raw: str) -> list[tuple[bool, str]] | None:
    """The (weak, opaque) entity-tags of a header's list, or None if it is not one.

    Read tag by tag, not split at commas: a comma may stand inside a tag's quotes.
    """
    tags = []
    position = 0
    while True:
        found = _TAG.match(raw, position)
        if found is None:
            return None
        tags.append((found.group(1) is not None, found.group(2)))
        position = found.end()
        if position == len(raw):
            return tags
        if raw[position] != ",":
            return None
        position += 1


def _version(opaque: str) -> int:
    if opaque.isascii() and opaque.isdigit() and len(opaque) <= _MAX_VERSION_DIGITS:
        return int(opaque)
    return NO_VERSION


def expected_version(request: Request[Any, Any, Any]) -> int | None:
    """The version If-Match asks for; None when the change is unconditional."""
    raw = _header(request, IF_MATCH)
    if raw is None or raw.strip() == "*":
        return None
    tags = _tags(raw)
    if tags is None:
        raise InvalidInput.single("If-Match", 'must be an entity-tag such as "3", or *')
    if len(tags) != 1:
        raise InvalidInput.single("If-Match", "must be one entity-tag (the version read), or *")
    weak, opaque = tags[0]
    return NO_VERSION if weak else _version(opaque)


def not_modified(request: Request[Any, Any, Any], version: int) -> bool:
    """Whether If-None-Match names ``version`` (a malformed header is ignored)."""
    raw = _header(request, IF_NONE_MATCH)
    if raw is None:
        return False
    if raw.strip() == "*":
        return True
    tags = _tags(raw) or []
    return any(_version(opaque) == version for _, opaque in tags)


def document_preconditions(schema: OpenAPI, paths: tuple[str, ...]) -> None:
    """Add the conditional headers to the OpenAPI operations of the versioned records."""
    match = Parameter(
        name="If-Match",
        param_in="header",
        required=False,
        schema=Schema(type=OpenAPIType.STRING, pattern=IF_MATCH_PATTERN),
        description='The ETag read (such as "3"), or *: the change is made only at that '
        "version, else 412 and nothing changes. One entity-tag; a weak one never matches.",
    )
    none_match = Parameter(
        name="If-None-Match",
        param_in="header",
        required=False,
        schema=Schema(type=OpenAPIType.STRING),
        description="ETags already held: 304 without a body if one is the current version.",
    )
    for path in paths:
        item = (schema.paths or {}).get(path)
        if item is None:
            continue
        if item.get is not None:
            item.get.parameters = [*(item.get.parameters or []), none_match]
        for operation in (item.put, item.patch, item.delete):
            if operation is not None:
                operation.parameters = [*(operation.parameters or []), match]
