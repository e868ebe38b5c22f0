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
    """The whole body must arrive within ``timeout_seconds`` of the first read of it."""

    def __init__(self, app: ASGIApp, timeout_seconds: float) -> None:
        self.app = app
        self._timeout = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] in _BODYLESS:
            await self.app(scope, receive, send)
            return
        deadline: float | None = None
        arrived = False

        async def bounded() -> ReceiveMessage:
            nonlocal deadline, arrived
            if arrived:  # (a later read waits for the disconnect: not ours to bound)
                return await receive()
            if deadline is None:
                deadline = asyncio.get_running_loop().time() + self._timeout
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise BodyReadTimeout(self._timeout) from None
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            arrived = not message.get("more_body", False)
            return message

        await self.app(scope, bounded, send)
