"""What http/dependencies.py relies on when it replaces Litestar's dependency resolution.

``resolve_dependencies_in_turn`` swaps ``KwargsModel.resolve_dependencies`` (private) for a
loop that resolves a handler's dependencies one after the other instead of in a task group.
If Litestar changes that method or what the loop calls, these fail before anything subtler
does; if Litestar stops starting tasks for a batch itself, the swap can go.
"""

from __future__ import annotations

import inspect

import pytest
from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.di import Provide
from litestar.testing import TestClient

from healthcare.entrypoints.container import build_container
from healthcare.entrypoints.http import dependencies
from healthcare.entrypoints.http.app import create_app
from healthcare.entrypoints.http.dependencies import LITESTAR_RESOLVE_DEPENDENCIES
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
    called_directly = {dependency.key: direct is not None for dependency, direct in plan}
    assert next(iter(called_directly)) == "principal"
    # The caller needs the request, the page and the filter their query: Litestar's way.
    assert called_directly == {
        "principal": False,
        "page_request": False,
        "patient_filter": False,
        "list_patients": True,
    }


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
