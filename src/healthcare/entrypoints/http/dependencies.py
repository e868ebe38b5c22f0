"""Litestar dependencies: the caller's identity, and use cases from the container.

The page a list route returns is a dependency too: see ``paging.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dependency_injector import providers
from litestar import Request
from litestar._kwargs.cleanup import DependencyCleanupGroup
from litestar._kwargs.dependencies import resolve_dependency
from litestar._kwargs.kwargs_model import KwargsModel
from litestar.connection import ASGIConnection
from litestar.di import Provide

from healthcare.application.ports import TokenService
from healthcare.domain.entities import Principal
from healthcare.domain.errors import AuthenticationFailed
from healthcare.entrypoints.http.origin import request_origin


def principal_dependency(tokens: TokenService) -> Provide:
    """Who is calling (the Bearer access token alone: no database round trip), from where."""

    def principal(request: Request[Any, Any, Any]) -> Principal:
        # Straight from the scope: request.headers would parse every header first.
        raw = next((v for k, v in request.scope["headers"] if k == b"authorization"), b"")
        header = raw.decode("latin-1")
        if not header:
            raise AuthenticationFailed("Authentication credentials were not provided")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationFailed("Use the header `Authorization: Bearer <access token>`")
        proven = tokens.read_access(token.strip())
        request.scope.setdefault("state", {})["user_id"] = proven.user_id  # for the access log
        return Principal(proven.user_id, proven.is_admin, request_origin(request))

    return Provide(principal, sync_to_thread=False)


def use_case_dependencies(use_cases: Mapping[str, providers.Provider[Any]]) -> dict[str, Provide]:
    """One Litestar dependency per container provider: a fresh use case per request."""
    return {
        name: Provide(_calling(provider), sync_to_thread=False)
        for name, provider in use_cases.items()
    }


def _calling(provider: providers.Provider[Any]) -> Callable[[], Any]:
    def provide() -> Any:
        return provider()

    return provide


# Litestar's own, kept to tell whether it still does what the replacement avoids.
LITESTAR_RESOLVE_DEPENDENCIES = KwargsModel.resolve_dependencies


class OptionalQuery(Provide):
    """A dependency on optional query parameters (each None when left out, as Litestar
    extracts it) and the request, with its value when none of them is given.

    When the client gives none of them (a list without search or filters, the usual
    request), the value is taken as it is: nothing to parse, check or refuse, so Litestar's
    signature model is not even built for it.
    """

    __slots__ = ("none_given",)

    def __init__(self, dependency: Callable[..., Any], *, none_given: Any) -> None:
        super().__init__(dependency, sync_to_thread=False)
        self.none_given = none_given


async def _resolve_in_turn(
    self: KwargsModel, connection: ASGIConnection[Any, Any, Any, Any], kwargs: dict[str, Any]
) -> DependencyCleanupGroup:
    cleanup_group = DependencyCleanupGroup()
    plan = _PLANS.get(self)
    if plan is None:
        plan = _PLANS[self] = _plan(self)
    for dependency, direct, query in plan:
        if direct is not None:
            kwargs[dependency.key] = direct()
        elif query and all(kwargs[name] is None for name in query):
            kwargs[dependency.key] = dependency.provide.none_given
        else:
            await resolve_dependency(dependency, connection, kwargs, cleanup_group)
    return cleanup_group


# A handler's dependencies in the order they are resolved, worked out on its first request:
# each with the function to call directly, or the query parameters it may be spared for.
_Step = tuple[Any, Callable[[], Any] | None, tuple[str, ...]]
_PLANS: dict[KwargsModel, tuple[_Step, ...]] = {}


def _plan(model: KwargsModel) -> tuple[_Step, ...]:
    """Batch after batch; in a batch, the caller first: a request without credentials is a
    401 whatever else is wrong with it (a batch is a set, so the order would otherwise vary
    between processes). A dependency that takes nothing and is a plain function (the use
    cases) is called directly: what ``resolve_dependency`` would do, without its two
    coroutines. An ``OptionalQuery`` is spared when none of its parameters is given."""
    return tuple(
        (dependency, _direct(dependency.provide), _optional_query(dependency.provide))
        for batch in model.dependency_batches
        for dependency in sorted(batch, key=_principal_first)
    )


def _optional_query(provide: Provide) -> tuple[str, ...]:
    """The query parameters whose absence spares an ``OptionalQuery``; none for the rest."""
    if not isinstance(provide, OptionalQuery):
        return ()
    parameters = provide.parsed_fn_signature.parameters
    names = tuple(name for name in parameters if name != "request")
    for name in names:
        if parameters[name].default is not None:
            msg = f"{provide.dependency.__name__}: {name} must be None when left out"
            raise TypeError(msg)
    return names


def _direct(provide: Provide) -> Callable[[], Any] | None:
    simple = (
        not provide.signature_model._fields
        and provide.has_sync_callable
        and not provide.use_cache
        and not provide.has_sync_generator_dependency
        and not provide.has_async_generator_dependency
    )
    return provide.dependency if simple else None


def _principal_first(dependency: Any) -> bool:
    return bool(dependency.key != "principal")  # False sorts first


def resolve_dependencies_in_turn() -> None:
    """Have Litestar resolve a handler's dependencies one after the other.

    Litestar resolves the independent dependencies of a handler concurrently: an anyio task
    group and a task per dependency, on every request (most handlers here have two or three:
    the principal, the use case, the page). Ours are all synchronous functions without I/O
    (``sync_to_thread=False``), so running them in turn gives the same result, without the
    tasks. Measured in process on a get-patient loop (memory adapter, CPU time per request,
    medians of five rounds of 2,000): 813-816 µs with it, 944-1,105 µs without. Calling the
    use cases directly (``_direct``) took a further 0.3 % of a mapping write's instructions
    and 1.0 % of a patient read's (callgrind, in process on PostgreSQL).

    This replaces a private method for the whole process: Litestar is pinned to its tested
    minor (pyproject.toml), and tests/unit/test_litestar_internals.py fails when the method
    or what it calls changes shape.
    """
    KwargsModel.resolve_dependencies = _resolve_in_turn  # type: ignore[method-assign]
