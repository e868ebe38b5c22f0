"""Use cases of the service itself."""

from __future__ import annotations

from healthcare.application.ports import DatabaseProbe


class CheckReadiness:
    def __init__(self, probe: DatabaseProbe) -> None:
        self._probe = probe

    async def __call__(self) -> bool:
        return await self._probe.is_reachable()
