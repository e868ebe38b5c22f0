"""A bound on how long a request's body may take to arrive, and a quiet word for a client
that leaves before it has.

Granian bounds how long the headers may take (``HTTP1Settings.header_read_timeout``, 30 s
by default) but not the body: a client that announced a body and sent a few bytes held its
request open for as long as it liked, and leaving half way was logged as an unhandled error
(Litestar reads an early ``http.disconnect`` as a 500).

``BodyDeadline`` wraps the whole application (asgi.py), outside Litestar: the errors it
raises come out of the body read inside a handler, so Litestar's exception handlers
(problems.py) answer them all the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from litestar.enums import ScopeType
from litestar.exceptions import ClientException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

# Methods whose handlers here read no body: their requests are passed through untouched.
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyReadTimeout(ClientException):
    """The body did not arrive in time: 408, and the connection is closed (what is still
    on its way would otherwise be read as the next request)."""

    status_code = 408

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__(
            detail=f"The request body did not arrive within {timeout_seconds:g} s",
            headers={"Connection": "close"},
        )


class ClientDisconnected(Exception):
    """The client went away before its request's body had arrived."""


class BodyDeadline:
    """The whole body must arrive within ``timeout_seconds`` of the first read of it.

    One watcher task per event loop checks the requests reading a body every ``tick`` (a
    tenth of the bound, at most half a second) and cancels those past their deadline; the
    read turns that cancellation into a 408. A timer per request (``asyncio.timeout_at``)
    cost a write about 1 % of its instructions (callgrind); a deadline in a dict costs
    next to nothing, and the bound holds to within a tick.
    """

    def __init__(self, app: ASGIApp, timeout_seconds: float) -> None:
        self.app = app
        self._timeout = timeout_seconds
        self._tick = min(0.5, timeout_seconds / 10)
        self._reading: dict[asyncio.Task[Any], float] = {}  # a body read: its deadline
        self._expired: set[asyncio.Task[Any]] = set()
        self._watcher: asyncio.Task[None] | None = None

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != ScopeType.HTTP or scope["method"] in _BODYLESS:
            # The app's own coroutine, not one of ours around it: a GET passes through no
            # frame of this class (about 0.5 % of a page of patients' instructions, callgrind).
            return self.app(scope, receive, send)
        return self._bounded(scope, receive, send)

    async def _bounded(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline: float | None = None
        arrived = False

        async def bounded() -> ReceiveMessage:
            nonlocal deadline, arrived
            if arrived:  # (a later read waits for the disconnect: not ours to bound)
                return await receive()
            task = asyncio.current_task()
            assert task is not None  # (an ASGI app always runs in a task)
            if deadline is None:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + self._timeout
                self._watch(loop)
            self._reading[task] = deadline
            try:
                message = await receive()
            except asyncio.CancelledError:
                if task not in self._expired:
                    raise
                task.uncancel()  # the watcher's cancel, answered here (as asyncio.timeout does)
                raise BodyReadTimeout(self._timeout) from None
            finally:
                self._reading.pop(task, None)
                self._expired.discard(task)
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            arrived = not message.get("more_body", False)
            return message

        await self.app(scope, bounded, send)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        watcher = self._watcher
        if watcher is None or watcher.done() or watcher.get_loop() is not loop:
            self._watcher = loop.create_task(self._expire_late_reads(loop))

    async def _expire_late_reads(self, loop: asyncio.AbstractEventLoop) -> None:
        """Until no body is being read: every tick, cancel the reads past their deadline."""
        while True:
            await asyncio.sleep(self._tick)
            reading = [
                (task, due) for task, due in self._reading.items() if task.get_loop() is loop
            ]
            if not reading:
                return
            now = loop.time()
            for task, due in reading:
                if due <= now and task not in self._expired:
                    self._expired.add(task)
                    task.cancel()
