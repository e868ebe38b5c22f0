"""Every adapter is in adapters/conformance.py, where mypy proves it satisfies its port."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import get_type_hints

from dependency_injector import providers

import healthcare.adapters
from healthcare.adapters import conformance
from healthcare.adapters.persistence.memory import MemoryStore
from healthcare.adapters.persistence.sqlalchemy.database import Database
from healthcare.adapters.persistence.sqlalchemy.revocation_feed import RevocationFeed
from healthcare.entrypoints.container import Container
from healthcare.entrypoints.settings import MEMORY_URL, Settings
from tests.unit.factories import SECRET

# What the adapters share, and background work the app starts: not adapters of a port.
NOT_ADAPTERS = {Database, MemoryStore, RevocationFeed}

CHECKED = {
    hint
    for name, hint in get_type_hints(conformance._every_adapter_satisfies_its_port).items()
    if name != "return"
}


def _wired_adapters() -> set[type]:
    """Every class of healthcare.adapters that the container builds, behind any selector."""
    container = Container(settings=Settings(database_url=MEMORY_URL, secret_key=SECRET))
    wired: set[type] = set()
    for provider in container.traverse(types=[providers.Provider]):
        if not isinstance(provider, providers.Factory | providers.BaseSingleton):
            continue
        provided = provider.provides
        if inspect.isclass(provided) and provided.__module__.startswith("healthcare.adapters"):
            wired.add(provided)
    return wired


def _repositories_and_units_of_work() -> set[type]:
    found: set[type] = set()
    for module_info in pkgutil.walk_packages(healthcare.adapters.__path__, "healthcare.adapters."):
        if ".migrations" in module_info.name:
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and value.__module__ == module.__name__
                and not name.startswith("_")
                and name.endswith(("Repository", "UnitOfWork"))
            ):
                found.add(value)
    return found


def test_every_adapter_the_container_wires_is_checked_against_its_port() -> None:
    wired = _wired_adapters()
    assert len(wired) > 10  # the traversal does reach into the selectors
    assert wired - NOT_ADAPTERS <= CHECKED, wired - NOT_ADAPTERS - CHECKED


def test_every_repository_and_unit_of_work_is_checked_against_its_port() -> None:
    found = _repositories_and_units_of_work()
    assert len(found) == 14  # six repositories and a unit of work, on SQL and in memory
    assert found <= CHECKED, found - CHECKED
