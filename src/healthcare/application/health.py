"""Use cases of the service itself."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from healthcare.application.ports import DependencyProbe


@dataclass(frozen=True, slots=True)
class Readiness:
    """Each dependency the service is configured with, by name, and whether it answered."""

    checks: Mapping[str, bool]

    @property
    def ready(self) -> bool:
        return all(self.checks.values())


class CheckReadiness:
    """Asks every dependency at once; ready only if all of them answer.

    The throttles' store is one (when configured): without it nobody can register, sign in
    or refresh, so a worker that cannot reach it is not fit to take new clients.
    """

    def __init__(
        self, database: DependencyProbe, throttle_store: DependencyProbe | None = None
    ) -> None:
        self._probes = {"database": database}
        if throttle_store is not None:
            self._probes["redis"] = throttle_store

    async def __call__(self) -> Readiness:
        answers = await asyncio.gather(*(probe.is_reachable() for probe in self._probes.values()))
        return Readiness(dict(zip(self._probes, answers, strict=True)))
