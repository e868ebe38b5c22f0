"""Keeps each worker's RevocationList current from the database, without a query per
request.

A revocation (RefreshSessionRepository.revoke_all_for_user) writes the user's "not
before" to ``token_revocation``, and on PostgreSQL announces it with ``pg_notify`` in the
same transaction, so it reaches every listening worker when it commits (milliseconds).
Each worker holds one connection of its own that LISTENs; when it is lost, the worker
reconnects and reads the table again, and it also reads the table every
``resync_seconds`` in case a notification was missed. SQLite has no notifications: each
worker reads the table every ``poll_seconds`` (half a second: one indexed query of the
few rows younger than the access-token lifetime). Either way the worker that revoked
knows at once (the use case tells its own list).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import bindparam, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from healthcare.adapters.persistence.sqlalchemy import tables
from healthcare.adapters.persistence.sqlalchemy.engine import normalise_url
from healthcare.adapters.security.revocations import RevocationList, epoch_ms

log = logging.getLogger(__name__)

REVOCATION_CHANNEL = "healthcare_token_revocation"
RECONNECT_SECONDS = 1.0

_tr = tables.token_revocation
_RECENT = select(_tr.c.user_id, _tr.c.not_before).where(_tr.c.not_before > bindparam("since"))


def announcement(user_id: int, when: datetime) -> str:
    return f"{user_id}:{epoch_ms(when)}"


def _announced(payload: str) -> tuple[int, int] | None:
    user_id, _, not_before = payload.partition(":")
    if not (user_id.isdigit() and not_before.isdigit()):
        return None
    return int(user_id), int(not_before)


class RevocationFeed:
    def __init__(
        self,
        database_url: str,
        engine: AsyncEngine,
        revocations: RevocationList,
        *,
        window: timedelta,
        resync_seconds: float = 30.0,
        poll_seconds: float = 0.5,
    ) -> None:
        self._engine = engine
        url = make_url(normalise_url(database_url))
        self._conninfo = (
            url.set(drivername="postgresql").render_as_string(False)
            if url.get_backend_name() == "postgresql"
            else None
        )
        self._revocations = revocations
        self._window = window
        self._resync = resync_seconds
        self._poll = poll_seconds
        self._tasks: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._failing = False

    async def sync(self) -> None:
        """Read every revocation young enough to matter."""
        since = datetime.now(UTC) - self._window
        async with self._engine.connect() as connection:
            rows = (await connection.execute(_RECENT, {"since": since})).all()
        for user_id, not_before in rows:
            self._revocations.note(user_id, epoch_ms(not_before))
        self._revocations.forget_older_than(self._window.total_seconds())

    def start(self) -> None:
        """Follow the database from now on; call from within the running event loop."""
        loop = asyncio.get_running_loop()
        if loop not in self._tasks:
            follow = self._listen_forever if self._conninfo else self._poll_forever
            self._tasks[loop] = loop.create_task(follow())

    async def close(self) -> None:
        task = self._tasks.pop(asyncio.get_running_loop(), None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _poll_forever(self) -> None:
        while True:
            started = time.monotonic()
            await self._attempt(self.sync())
            await asyncio.sleep(max(0.0, self._poll - (time.monotonic() - started)))

    async def _listen_forever(self) -> None:
        while True:
            await self._attempt(self._listen())
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen(self) -> None:
        assert self._conninfo is not None
        connection = await psycopg.AsyncConnection.connect(
            self._conninfo, autocommit=True, connect_timeout=5
        )
        async with connection:
            await connection.execute(f"LISTEN {REVOCATION_CHANNEL}")
            await self.sync()  # after LISTEN: nothing committed since can be missed
            self._recovered()
            while True:
                async for notice in connection.notifies(timeout=self._resync):
                    if (announced := _announced(notice.payload)) is not None:
                        self._revocations.note(*announced)
                await self.sync()

    async def _attempt(self, work: Awaitable[None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            # Once per outage: the worker keeps what it knows, and the access tokens it
            # has not heard about lapse within their lifetime at worst.
            if not self._failing:
                log.warning("Token revocations cannot be followed; retrying", exc_info=True)
            self._failing = True
        else:
            self._recovered()

    def _recovered(self) -> None:
        if self._failing:
            log.warning("Token revocations are followed again")
        self._failing = False
