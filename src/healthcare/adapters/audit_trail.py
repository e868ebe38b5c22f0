"""Writing the audit events that accompany no change (reads and refusals) in batches.

Events of changes go through the change's own unit of work. Reads change nothing, and a
transaction of their own would cost each read a commit, so their events are buffered and
written together, one transaction per batch:

- every ``interval`` seconds, by a writer task started with the service;
- before the trail is read (``flush``), and when the service stops (``close``);
- if a write fails (the database is away) the events stay buffered and are retried. Past
  ``max_pending`` waiting events, ``record`` writes them itself, so a failing database
  fails requests instead of letting the buffer grow without bound.

A crash of the process can lose at most the events of the last ``interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable

from healthcare.application.ports import UnitOfWork
from healthcare.domain.audit import AuditEvent

log = logging.getLogger(__name__)


class BufferedAuditTrail:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        interval: float = 0.25,
        max_pending: int = 20_000,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._interval = interval
        self._max_pending = max_pending
        self._pending: list[AuditEvent] = []
        # Since start, for /metrics: events put in the buffer, and events written from it.
        self.buffered = 0
        self.written = 0
        # asyncio primitives belong to one event loop. A service runs one loop per process,
        # but tests may serve one container from several, so each loop gets its own.
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[None]] = (
            weakref.WeakKeyDictionary()
        )

    async def record(self, event: AuditEvent) -> None:
        self._pending.append(event)
        self.buffered += 1
        if not self._writers or len(self._pending) >= self._max_pending:
            # Not started (the command line, tests), or the writer cannot keep up.
            await self.flush()

    async def flush(self) -> None:
        """Write every waiting event, including any another flush is writing right now."""
        loop = asyncio.get_running_loop()
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            events, self._pending = self._pending, []
            if not events:
                return
            try:
                async with self._unit_of_work() as uow:
                    await uow.audit.add(events)
                    await uow.commit()
            except BaseException:
                self._pending[:0] = events  # kept, in order, for the next attempt
                raise
            self.written += len(events)

    def start(self) -> None:
        """Write in the background from now on; call from within the running event loop."""
        loop = asyncio.get_running_loop()
        if loop not in self._writers:
            self._writers[loop] = loop.create_task(self._write_forever())

    async def close(self) -> None:
        """Stop this event loop's background writer and write what is left."""
        writer = self._writers.pop(asyncio.get_running_loop(), None)
        if writer is not None:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        await self.flush()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def _write_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:
                # Once per outage, not once per attempt (four times a second).
                if not failing:
                    log.exception("Could not write %d audit events; will retry", self.pending)
                failing = True
            else:
                if failing:
                    log.warning("Audit events are being written again")
                failing = False
