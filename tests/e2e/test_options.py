"""OPTIONS answers with every method of its route, on every route and both slash forms.

The expected methods come from the OpenAPI document (what each path documents) and from the
app's own routes (which also cover the undocumented /schema routes), never from a hand list.
See src/healthcare/entrypoints/http/options.py for the Litestar bug this works around.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any

import pytest
from litestar import Controller, Litestar, delete, get
from litestar.params import Parameter
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.settings import Settings

Client = AsyncTestClient[Litestar]

_PARAMETER = re.compile(r"\{[^}]+\}")
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _concrete(path: str) -> str:
    """A path that the route template matches: every parameter becomes 1."""
    return _PARAMETER.sub("1", path)


def _both_forms(path: str) -> list[str]:
    bare = path.rstrip("/") or "/"
    return [bare, bare + "/"]


def _allow(response: Any) -> set[str]:
    return {method.strip() for method in response.headers["allow"].split(",")}


async def test_options_lists_every_documented_method(client: Client) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    checked = 0
    for path, operations in document["paths"].items():
        documented = {method.upper() for method in operations if method in _METHODS}
        for url in _both_forms(_concrete(path)):
            response = await client.options(url)
            assert response.status_code == 204, (url, response.text)
            assert _allow(response) == documented | {"OPTIONS"}, url
            checked += 1
    assert checked >= 2 * 20  # every documented path, both forms


async def test_options_lists_every_method_of_every_route(client: Client, app: Litestar) -> None:
    routes = [route for route in app.routes if isinstance(route, HTTPRoute)]
    assert len(routes) >= 20
    for route in routes:
        for url in _both_forms(_concrete(route.path)):
            response = await client.options(url)
            assert response.status_code == 204, (url, response.text)
            assert _allow(response) == set(route.methods), url
            # A method the route lacks is a 405 naming the same methods.
            lacking = next(m for m in ("PATCH", "PUT", "DELETE", "POST") if m not in route.methods)
            wrong = await client.request(lacking, url)
            assert wrong.status_code == 405, url
            assert _allow(wrong) == set(route.methods), url


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/patients/1", {"GET", "PUT", "PATCH", "DELETE", "OPTIONS"}),
        ("/api/patients", {"GET", "POST", "OPTIONS"}),
        ("/api/mappings/1/", {"GET", "DELETE", "OPTIONS"}),
    ],
)
async def test_the_routes_the_issue_names(client: Client, path: str, methods: set[str]) -> None:
    """The three answers issue 13 reported wrong, spelled out once."""
    response = await client.options(path)
    assert response.status_code == 204
    assert _allow(response) == methods


async def test_a_cors_preflight_is_still_answered_by_the_cors_config(settings: Settings) -> None:
    configured = dataclasses.replace(settings, cors_origins=("https://app.example",))
    async with AsyncTestClient(create_app(build_container(configured))) as browser:
        preflight = await browser.options(
            "/api/patients/1/",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": "Authorization, Content-Type",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        allowed = {m.strip() for m in preflight.headers["access-control-allow-methods"].split(",")}
        assert allowed == {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
        refused = await browser.options(
            "/api/patients/",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert refused.status_code == 400
        assert "access-control-allow-origin" not in refused.headers
        # Without an Origin it is a plain OPTIONS, answered with the route's methods.
        plain = await browser.options("/api/patients/1/")
        assert _allow(plain) == {"GET", "PUT", "PATCH", "DELETE", "OPTIONS"}


ThingId = Annotated[int, Parameter(gt=0)]


class _TwoMethods(Controller):
    path = "/thing"

    @get("/{thing_id:int}")
    async def show(self, thing_id: ThingId) -> None: ...

    @delete("/{thing_id:int}")
    async def remove(self, thing_id: ThingId) -> None: ...


async def test_litestar_still_needs_the_workaround() -> None:
    """Litestar alone still answers from the first route built for the path.

    When this fails, Litestar has changed how it makes OPTIONS handlers: check whether it
    answers truthfully by itself (then TruthfulOptions can go) or whether the internals
    TruthfulOptions reads (``route_handler_map``, ``scope["route_handler"]``) have moved.
    """
    bare = Litestar(route_handlers=[_TwoMethods])
    route = next(r for r in bare.routes if r.path == "/thing/{thing_id:int}")
    assert isinstance(route, HTTPRoute)
    assert set(route.methods) == {"GET", "DELETE", "OPTIONS"}
    handler, _ = route.route_handler_map["OPTIONS"]
    async with AsyncTestClient(bare) as client:
        response = await client.options("/thing/1")
    assert _allow(response) != set(route.methods)  # the bug: one of the two methods only
    assert response.status_code == 204
    assert handler.handler_name == "options_handler"  # Litestar's automatic handler
