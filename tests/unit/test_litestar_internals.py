"""What http/dependencies.py relies on when it replaces Litestar's dependency resolution.

``resolve_dependencies_in_turn`` swaps ``KwargsModel.resolve_dependencies`` (private) for a
loop that resolves a handler's dependencies one after the other instead of in a task group.
If Litestar changes that method or what the loop calls, these fail before anything subtler
does; if Litestar stops starting tasks for a batch itself, the swap can go.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.di import Provide
from litestar.testing import RequestFactory, TestClient
from litestar.utils.signature import ParsedSignature

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http import dependencies
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.http.dependencies import LITESTAR_RESOLVE_DEPENDENCIES, OptionalQuery
from healthcare.entrypoints.http.filters import DOCTOR_FILTER, MAPPING_FILTER, PATIENT_FILTER
from healthcare.entrypoints.settings import Settings


def _parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


def test_the_replaced_method_has_the_shape_of_the_replacement() -> None:
    assert _parameters(LITESTAR_RESOLVE_DEPENDENCIES) == ["self", "connection", "kwargs"]
    assert _parameters(dependencies._resolve_in_turn) == ["self", "connection", "kwargs"]
    assert "dependency_batches" in KwargsModel.__slots__
    assert _parameters(resolve_dependency) == [
        "dependency",
        "connection",
        "kwargs",
        "cleanup_group",
    ]
    assert _parameters(DependencyCleanupGroup) == ["generators"]


def test_what_a_direct_call_skips_is_still_what_resolve_dependency_checks() -> None:
    """A dependency that takes nothing is called directly (``_direct``): only if Litestar's
    own resolution would do nothing but call it, which these attributes decide."""
    source = inspect.getsource(resolve_dependency) + inspect.getsource(Provide.__call__)
    for attribute in (
        "signature_model._fields",
        "has_sync_callable",
        "use_cache",
        "has_sync_generator_dependency",
        "has_async_generator_dependency",
        "self.dependency(**kwargs)",
        "kwargs[dependency.key] = value",
    ):
        assert attribute in source, attribute


def test_a_use_case_is_called_directly_and_the_caller_is_resolved_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(dependencies, "_PLANS", {})
    app = create_app(build_container(Settings(database_url="memory://", secret_key="k" * 40)))
    with TestClient(app) as client:
        assert client.get("/api/patients/?page=1&offset=5").status_code == 401
    [plan] = dependencies._PLANS.values()
    ways = {
        dependency.key: "direct" if direct else "spared if absent" if query else "Litestar's"
        for dependency, direct, query in plan
    }
    assert next(iter(ways)) == "principal"
    # The caller needs the request, the page its query: Litestar's way. The filter needs
    # its query only when one of its parameters is given.
    assert ways == {
        "principal": "Litestar's",
        "page_request": "Litestar's",
        "patient_filter": "spared if absent",
        "list_patients": "direct",
    }
    [(_, _, query)] = [step for step in plan if step[0].key == "patient_filter"]
    assert set(query) == {
        "search",
        "gender",
        "min_age",
        "max_age",
        "created_after",
        "created_before",
        "ordering",
    }


@pytest.mark.parametrize(
    "dependencies_of_a_route",
    [PATIENT_FILTER, DOCTOR_FILTER, MAPPING_FILTER],
    ids=["patients", "doctors", "mappings"],
)
def test_a_filter_spared_is_what_the_filter_gives_without_parameters(
    dependencies_of_a_route: dict[str, OptionalQuery],
) -> None:
    [provide] = dependencies_of_a_route.values()
    takes = inspect.signature(provide.dependency).parameters
    request = RequestFactory().get("/")
    given = {"request": request} if "request" in takes else {}
    assert provide.dependency(**given) == provide.none_given


def test_an_optional_query_parameter_with_a_default_is_refused() -> None:
    def listing(request: Any, limit: int = 20) -> None:
        del request, limit

    provide = OptionalQuery(listing, none_given=None)
    provide.parsed_fn_signature = ParsedSignature.from_fn(listing, {"Any": Any})
    with pytest.raises(TypeError, match="limit must be None when left out"):
        dependencies._optional_query(provide)


def test_litestar_still_resolves_a_batch_in_a_task_group() -> None:
    """The reason for the swap; when this fails, measure without it and delete it."""
    source = inspect.getsource(LITESTAR_RESOLVE_DEPENDENCIES)
    assert "create_task_group" in source
    assert "self.dependency_batches" in source


def test_building_the_app_installs_the_replacement(monkeypatch: pytest.MonkeyPatch) -> None:
    # Litestar's own first (another test may have built an app already), then an app.
    monkeypatch.setattr(KwargsModel, "resolve_dependencies", LITESTAR_RESOLVE_DEPENDENCIES)
    create_app(build_container(Settings(database_url="memory://", secret_key="k" * 40)))
    assert KwargsModel.resolve_dependencies is dependencies._resolve_in_turn
