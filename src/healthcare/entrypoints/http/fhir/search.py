"""FHIR search parameters: which page, which order, and what the searchset Bundle says.

Common to every search: ``_count`` (page size), ``_offset`` or ``_page`` (from 1),
``_sort`` (comma-separated, ``-`` for descending), ``_summary=count`` (the total only) and
``_format``. Each resource names its own parameters. A parameter this server does not know is
ignored and listed in an OperationOutcome entry of the Bundle, as FHIR servers do, unless the
client sends ``Prefer: handling=strict``: then it is a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from litestar import Request

from healthcare.application.paging import MAX_LIMIT, Page, PageRequest
from healthcare.entrypoints.http.fhir.outcomes import FhirProblem, IssueAt, outcome
from healthcare.entrypoints.http.fhir.resources import (
    Bundle,
    BundleEntry,
    BundleLink,
    BundleSearch,
)
from healthcare.entrypoints.http.schemas import MAX_ID

# Parameters every FHIR request may carry that change nothing in a search.
_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
_RESULT = frozenset({"_count", "_offset", "_page", "_sort", "_summary", "_format"})


@dataclass
class Search:
    """A search as asked: its page, its own parameters' values, the order, what was ignored."""

    page: PageRequest
    values: dict[str, str] = field(default_factory=dict)
    ordering: str | None = None
    count_only: bool = False
    ignored: list[str] = field(default_factory=list)
    sort: str | None = None


def check_format(request: Request[Any, Any, Any]) -> None:
    """``_format``, when given, must name JSON: the one format served (406 otherwise)."""
    if not request.scope["query_string"]:
        return
    asked = request.query_params.get("_format")
    if asked is not None and asked.split(";")[0].strip() not in _FORMATS:
        raise FhirProblem.one(406, "not-supported", "_format: only JSON is served", "_format")


def strict(request: Request[Any, Any, Any]) -> bool:
    """Whether the client asked ``Prefer: handling=strict`` (among other preferences)."""
    raw = next((v for k, v in request.scope["headers"] if k == b"prefer"), b"")
    preferences = {p.replace(" ", "").lower() for p in re.split(r"[,;]", raw.decode("latin-1"))}
    return "handling=strict" in preferences


def _integer(name: str, raw: str, low: int, high: int) -> int:
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise FhirProblem.one(
            400, "invalid", f"{name}: must be a whole number from {low} to {high}", name
        )
    return int(raw)


def parse_search(
    request: Request[Any, Any, Any],
    parameters: Mapping[str, str],
    sorts: Mapping[str, str],
    default_count: int,
) -> Search:
    """The search ``request`` asks for. ``parameters`` maps each name the resource takes (with
    its modifiers, such as ``name:contains``) to the one it stands for; ``sorts`` each
    ``_sort`` key to the ordering field of the core's listing rules."""
    given = request.query_params
    problems: list[IssueAt] = []
    ignored: list[str] = []
    values: dict[str, str] = {}
    for name in dict.fromkeys(given.keys()):
        if len(given.getall(name)) > 1:
            problems.append(IssueAt(f"{name}: give it once", name))
        elif name in parameters:
            values[parameters[name]] = given[name]
        elif name not in _RESULT:
            ignored.append(name)
    summary = given.get("_summary")
    if summary is not None and summary not in {"count", "false"}:
        ignored.append(f"_summary={summary}")
    if ignored and strict(request):
        problems += [
            IssueAt(f"{name}: not a search parameter of this server", name) for name in ignored
        ]
    if problems:
        raise FhirProblem.invalid(problems)
    count = _integer("_count", given["_count"], 0, MAX_LIMIT) if "_count" in given else None
    if "_page" in given and "_offset" in given:
        raise FhirProblem.one(400, "invalid", "_page: give _page or _offset, not both", "_page")
    size = count or default_count
    offset = 0
    if "_offset" in given:
        offset = _integer("_offset", given["_offset"], 0, MAX_ID)
    elif "_page" in given:
        offset = (_integer("_page", given["_page"], 1, MAX_ID // MAX_LIMIT) - 1) * size
    return Search(
        page=PageRequest(limit=size, offset=offset),
        values=values,
        ordering=_ordering(given.get("_sort"), sorts),
        count_only=summary == "count" or count == 0,
        ignored=ignored,
        sort=given.get("_sort"),
    )


def _ordering(raw: str | None, sorts: Mapping[str, str]) -> str | None:
    if raw is None or not raw.strip():
        return None
    fields = []
    for item in raw.split(","):
        key = item.strip()
        descending = key.startswith("-")
        target = sorts.get(key.removeprefix("-"))
        if target is None:
            choices = ", ".join(sorts)
            raise FhirProblem.one(400, "invalid", f"_sort: must list keys among {choices}", "_sort")
        # A target that starts with - sorts the other way (birthdate is age descending).
        if descending:
            target = target.removeprefix("-") if target.startswith("-") else f"-{target}"
        fields.append(target)
    return ",".join(fields)


def searchset(
    base: str,
    resource_type: str,
    search: Search,
    page: Page[Any],
    to_resource: Callable[[Any], Any],
    *,
    query: Sequence[tuple[str, str]] = (),
) -> Bundle:
    """The searchset Bundle of ``page``: total, self/next/previous links that page by
    ``_count`` and ``_offset`` keeping the search's own parameters, the matches, and an
    OperationOutcome entry naming what was ignored."""
    url = f"{base}/{resource_type}"

    def link(relation: str, offset: int) -> BundleLink:
        paging = [("_count", str(search.page.limit)), ("_offset", str(offset))]
        sort = [("_sort", search.sort)] if search.sort else []
        return BundleLink(relation, f"{url}?{urlencode([*query, *sort, *paging])}")

    entries: list[BundleEntry] = []
    if search.count_only:
        links = [BundleLink("self", f"{url}?{urlencode([*query, ('_summary', 'count')])}")]
    else:
        asked = search.page
        links = [link("self", asked.offset)]
        if asked.offset + asked.limit < page.total:
            links.append(link("next", asked.offset + asked.limit))
        if asked.offset > 0:
            links.append(link("previous", max(asked.offset - asked.limit, 0)))
        for item in page.items:
            resource = to_resource(item)
            entries.append(BundleEntry(resource, f"{url}/{resource.id}", BundleSearch("match")))
    if search.ignored:
        issues = [
            IssueAt(f"{name}: not a search parameter of this server; ignored", name)
            for name in search.ignored
        ]
        entries.append(
            BundleEntry(outcome(issues, "not-supported", "warning"), None, BundleSearch("outcome"))
        )
    return Bundle("searchset", page.total, links, entries or None)
