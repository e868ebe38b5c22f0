"""The in-memory store is always reachable."""

from __future__ import annotations


class MemoryProbe:
    async def is_reachable(self) -> bool:
        return True
