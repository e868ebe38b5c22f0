"""Paging of every list route: limit/offset or DRF's page/page_size, and DEFAULT_PAGE_SIZE.

The list routes are found in the OpenAPI document (every GET that documents X-Total-Count),
so a new list route is covered without being named here.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.http.paging import MAX_PAGE
from healthcare.entrypoints.http.schemas import MAX_ID
from healthcare.entrypoints.settings import Settings
from tests.e2e.conftest import Account, assert_problem, create_doctor, create_patient

Client = AsyncTestClient[Litestar]

_LINK = re.compile(r'<([^>]+)>; rel="(next|prev)"')


def _links(response: Any) -> dict[str, dict[str, list[str]]]:
    """rel -> the query parameters of its URL (each name with all its values, in order)."""
    found: dict[str, dict[str, list[str]]] = {}
    for url, rel in _LINK.findall(response.headers.get("link", "")):
        query: dict[str, list[str]] = {}
        for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
            query.setdefault(name, []).append(value)
        found[rel] = query
    return found


def _paging_links(response: Any) -> dict[str, dict[str, list[str]]]:
    """``_links`` with the paging parameters only."""
    paging = {"limit", "offset", "page", "page_size"}
    return {
        rel: {name: values for name, values in query.items() if name in paging}
        for rel, query in _links(response).items()
    }


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def _ids(response: Any) -> list[int]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()]


async def _list_routes(client: Client) -> list[str]:
    document = (await client.get("/schema/openapi.json")).json()
    routes = [
        path
        for path, operations in document["paths"].items()
        if "X-Total-Count"
        in operations.get("get", {}).get("responses", {}).get("200", {}).get("headers", {})
    ]
    assert len(routes) >= 6, routes
    return routes


@dataclass
class World:
    """Alice's three patients, the first assigned to three doctors; an admin for the trail."""

    alice: Account
    admin: Account
    patients: list[int]

    def url(self, route: str, query: str = "") -> str:
        """The route for the first patient; the trail filtered to Alice, so that reading it
        (an event of the admin's) does not change it."""
        path = re.sub(r"\{[^}]+\}", str(self.patients[0]), route)
        given = [f"user_id={self.alice.id}"] if route.startswith("/api/audit") else []
        return f"{path}?{'&'.join([*given, query] if query else given)}"

    def headers(self, route: str) -> dict[str, str]:
        return self.admin.headers if route.startswith("/api/audit") else self.alice.headers


@pytest.fixture
async def world(client: Client, alice: Account, admin: Account) -> World:
    patients = [(await create_patient(client, alice, name=f"P{i}"))["id"] for i in range(3)]
    for i in range(3):
        doctor = await create_doctor(client, alice, name=f"Dr. {i}")
        assigned = await client.post(
            "/api/mappings/",
            json={"patient": patients[0], "doctor": doctor["id"]},
            headers=alice.headers,
        )
        assert assigned.status_code == 201, assigned.text
    return World(alice, admin, patients)


async def test_page_and_page_size_walk_a_list(client: Client, alice: Account) -> None:
    ids = [(await create_patient(client, alice, name=f"P{i}"))["id"] for i in range(5)]
    pages = [
        await client.get(f"/api/patients/?page={n}&page_size=2", headers=alice.headers)
        for n in (1, 2, 3, 4)
    ]
    assert [_ids(page) for page in pages] == [ids[0:2], ids[2:4], ids[4:], []]
    assert {page.headers["x-total-count"] for page in pages} == {"5"}
    assert [_links(page) for page in pages] == [
        {"next": {"page": ["2"], "page_size": ["2"]}},
        {"next": {"page": ["3"], "page_size": ["2"]}, "prev": {"page": ["1"], "page_size": ["2"]}},
        {"prev": {"page": ["2"], "page_size": ["2"]}},
        {"prev": {"page": ["3"], "page_size": ["2"]}},
    ]
    # The same items as by limit and offset.
    by_offset = await client.get("/api/patients/?limit=2&offset=2", headers=alice.headers)
    assert _ids(by_offset) == _ids(pages[1])


@pytest.mark.parametrize("style", ["page=1&page_size=2", "limit=2&offset=0"])
async def test_following_next_links_reads_every_item_once(
    client: Client, world: World, style: str
) -> None:
    routes = await _list_routes(client)
    walked = 0
    for route in routes:
        headers = world.headers(route)
        whole = await client.get(world.url(route, "limit=1000"), headers=headers)
        total = int(whole.headers["x-total-count"])
        if total > 30:  # the doctor directory, shared by every test: a few pages will do
            continue
        seen: list[int] = []
        url: str | None = world.url(route, style)
        while url is not None:
            response = await client.get(url, headers=headers)
            seen += _ids(response)
            next_url = dict((rel, u) for u, rel in _LINK.findall(response.headers.get("link", "")))
            url = _path_of(next_url["next"]) if "next" in next_url else None
        assert seen == _ids(whole), route
        walked += 1
    assert walked >= len(routes) - 1  # all but the doctor directory


async def test_links_keep_every_other_query_parameter(client: Client, world: World) -> None:
    await client.get("/api/patients/", headers=world.alice.headers)  # three patient.list events
    await client.get("/api/patients/", headers=world.alice.headers)
    await client.get("/api/patients/", headers=world.alice.headers)
    response = await client.get(
        f"/api/audit/?user_id={world.alice.id}&action=patient.list&page=2&page_size=1",
        headers=world.admin.headers,
    )
    assert response.headers["x-total-count"] == "3"
    assert len(response.json()) == 1
    filters = {"user_id": [str(world.alice.id)], "action": ["patient.list"]}
    assert _links(response) == {
        "next": {**filters, "page": ["3"], "page_size": ["1"]},
        "prev": {**filters, "page": ["1"], "page_size": ["1"]},
    }
    # Unknown and repeated parameters are kept too, and limit/offset paging keeps its words.
    repeated = await client.get(
        "/api/patients/?tag=a&tag=b&limit=1&offset=1", headers=world.alice.headers
    )
    assert _links(repeated) == {
        "next": {"tag": ["a", "b"], "limit": ["1"], "offset": ["2"]},
        "prev": {"tag": ["a", "b"], "limit": ["1"], "offset": ["0"]},
    }


@pytest.mark.parametrize(
    ("query", "expected", "links"),
    [
        # page alone: pages of the default size (100), so page 2 of three patients is empty.
        ("page=2", slice(3, 3), {"prev": {"page": ["1"], "page_size": ["100"]}}),
        # page_size alone: page 1.
        ("page_size=2", slice(0, 2), {"next": {"page": ["2"], "page_size": ["2"]}}),
        # Escaped names are the same names.
        ("p%61ge_size=2", slice(0, 2), {"next": {"page": ["2"], "page_size": ["2"]}}),
        ("p%61ge=2&limit=2", slice(2, 3), {"prev": {"page": ["1"], "page_size": ["2"]}}),
        # page with limit: limit is the page size.
        ("page=2&limit=2", slice(2, 3), {"prev": {"page": ["1"], "page_size": ["2"]}}),
        # page_size and limit may both be given when they agree.
        ("page_size=2&limit=2", slice(0, 2), {"next": {"page": ["2"], "page_size": ["2"]}}),
        # page_size with offset: limit/offset paging, page_size as the limit.
        (
            "page_size=1&offset=1",
            slice(1, 2),
            {
                "next": {"limit": ["1"], "offset": ["2"]},
                "prev": {"limit": ["1"], "offset": ["0"]},
            },
        ),
    ],
)
async def test_how_the_parameters_combine(
    client: Client, world: World, query: str, expected: slice, links: dict[str, Any]
) -> None:
    response = await client.get(f"/api/patients/?{query}", headers=world.alice.headers)
    assert _ids(response) == world.patients[expected]
    assert response.headers["x-total-count"] == "3"
    assert _links(response) == links


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("page=2&offset=0", {"page", "offset"}),
        ("page=1&offset=5&page_size=2", {"page", "offset"}),
        ("page_size=2&limit=3", {"page_size", "limit"}),
        ("p%61ge=2&offset=0", {"page", "offset"}),
        ("%70age_size=2&limit=3", {"page_size", "limit"}),
        ("page_size=2&limit=3&page=2&offset=1", {"page", "offset", "page_size", "limit"}),
        ("page=0", {"page"}),
        ("page=-1", {"page"}),
        ("page=two", {"page"}),
        ("page=1.5", {"page"}),
        ("page=", {"page"}),
        (f"page={MAX_PAGE + 1}", {"page"}),
        ("page=99999999999999999999999", {"page"}),
        ("page_size=0", {"page_size"}),
        ("page_size=1001", {"page_size"}),
        ("page_size=ten", {"page_size"}),
        ("page_size=", {"page_size"}),
    ],
)
async def test_bad_or_contradictory_paging_is_a_400_naming_the_parameter(
    client: Client, world: World, query: str, fields: set[str]
) -> None:
    for route in await _list_routes(client):
        response = await client.get(world.url(route, query), headers=world.headers(route))
        body = assert_problem(response, 400, *fields)
        assert {error["field"] for error in body["errors"]} == fields, (route, body)


async def test_the_last_page_number_is_an_offset_the_api_accepts(
    client: Client, world: World
) -> None:
    assert (MAX_PAGE - 1) * 1000 <= MAX_ID < MAX_PAGE * 1000
    for route in await _list_routes(client):
        response = await client.get(
            world.url(route, f"page={MAX_PAGE}&page_size=1000"), headers=world.headers(route)
        )
        assert response.status_code == 200, (route, response.text)
        assert response.json() == []
        assert _paging_links(response) == {
            "prev": {"page": [str(MAX_PAGE - 1)], "page_size": ["1000"]}
        }


async def test_the_document_lists_the_paging_parameters_of_every_list_route(
    client: Client,
) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    expected = {
        "limit": (1, 1000, 100),
        "offset": (0, MAX_ID, 0),
        "page": (1, MAX_PAGE, 1),
        "page_size": (1, 1000, 100),
    }
    for route in await _list_routes(client):
        parameters = {
            p["name"]: p["schema"]
            for p in document["paths"][route]["get"]["parameters"]
            if p["in"] == "query"
        }
        for name, (low, high, default) in expected.items():
            schema = parameters[name]
            assert schema["type"] == "integer", (route, name)
            assert (schema["minimum"], schema["maximum"], schema["default"]) == (
                low,
                high,
                default,
            ), (route, name)
    # Every route that takes paging parameters answers with the paging headers.
    paged = {
        path
        for path, operations in document["paths"].items()
        for operation in operations.values()
        if isinstance(operation, dict)
        and any(p["name"] == "page" for p in operation.get("parameters", []))
    }
    assert paged == set(await _list_routes(client))


@pytest.fixture
async def small_pages(settings: Settings) -> AsyncIterator[Client]:
    """The app with DEFAULT_PAGE_SIZE=2, on the same database (tokens work in both)."""
    configured = dataclasses.replace(settings, default_page_size=2)
    async with AsyncTestClient(create_app(build_container(configured))) as small:
        yield small


async def test_default_page_size_is_the_page_of_every_list_route(
    small_pages: Client, world: World
) -> None:
    for route in await _list_routes(small_pages):
        headers = world.headers(route)
        response = await small_pages.get(world.url(route), headers=headers)
        assert len(response.json()) == 2, route
        assert int(response.headers["x-total-count"]) >= 3, route
        assert _paging_links(response) == {"next": {"limit": ["2"], "offset": ["2"]}}, route
        by_page = await small_pages.get(world.url(route, "page=1"), headers=headers)
        assert _ids(by_page) == _ids(response), route
        assert _paging_links(by_page) == {"next": {"page": ["2"], "page_size": ["2"]}}, route
        # The client's own size still wins, up to the cap.
        larger = await small_pages.get(world.url(route, "page_size=3"), headers=headers)
        assert len(larger.json()) == 3, route
    document = (await small_pages.get("/schema/openapi.json")).json()
    parameters = {
        p["name"]: p["schema"] for p in document["paths"]["/api/patients"]["get"]["parameters"]
    }
    assert parameters["limit"]["default"] == parameters["page_size"]["default"] == 2
    assert parameters["page_size"]["maximum"] == 1000
