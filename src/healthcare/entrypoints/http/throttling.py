"""Per-address limits on the unauthenticated write routes (registration and refresh).

A fixed one-minute window per client address, counted by the same expiring counters as the
sign-in brakes (Redis when ``REDIS_URL`` is set, so every worker shares one count). Each
request is one atomic increment. (Litestar's RateLimitMiddleware, used before, kept every
request's timestamp of the window in one JSON document, decoded and re-encoded per request
under a lock per worker: its cost grew with the limit, and its read-then-write lost counts
between workers.)

Login has its own brakes (healthcare.adapters.throttling.login); this limiter is attached to
registration and refresh only (see app.py), so no other request pays for it.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar import Request
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from healthcare.adapters.throttling.counters import Counters
from healthcare.domain.errors import TooManyAttempts
from healthcare.entrypoints.http.origin import client_address

WINDOW_SECONDS = 60


class AddressRateLimit:
    """At most ``per_minute`` requests per client address and window, then 429 with
    Retry-After until the window ends; admitted requests' answers carry the RateLimit draft's
    headers."""

    def __init__(self, app: ASGIApp, counters: Counters, per_minute: int) -> None:
        self._app = app
        self._counters = counters
        self._limit = per_minute
        self._fixed = [
            (b"ratelimit-policy", f"{per_minute}; w={WINDOW_SECONDS}".encode()),
            (b"ratelimit-limit", str(per_minute).encode()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        address = client_address(Request(scope))
        count, resets_in = await self._counters.increment(f"auth:client:{address}", WINDOW_SECONDS)
        if count > self._limit:
            raise TooManyAttempts(resets_in)
        limits = [
            *self._fixed,
            (b"ratelimit-remaining", b"%d" % (self._limit - count)),
            (b"ratelimit-reset", b"%d" % resets_in),
        ]

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Appended as raw pairs: nothing before us sets these names.
                message["headers"] = [*message.get("headers", ()), *limits]
            await send(message)

        await self._app(scope, receive, send_with_limits)


def address_rate_limit(counters: Counters, per_minute: int) -> Callable[[ASGIApp], ASGIApp]:
    """The limiter as Litestar middleware. (A closure: Litestar deep-copies DefineMiddleware's
    arguments, so the limiter would count in a copy of the container's counters, and a
    Redis client cannot be copied at all.)"""

    def limited(app: ASGIApp) -> ASGIApp:
        return AddressRateLimit(app, counters, per_minute)

    return limited
