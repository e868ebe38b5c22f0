"""Per-address limits on the unauthenticated write routes."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.middleware.rate_limit import RateLimitConfig

from healthcare.entrypoints.http.origin import client_address

# Registration and refresh share one budget per address; login has its own brakes
# (healthcare.adapters.throttling.login).
THROTTLED_PATHS = frozenset(
    {"/api/auth/register", "/api/register", "/api/auth/token/refresh", "/api/token/refresh"}
)
RATE_LIMIT_STORE = "rate_limit"


async def _throttled(request: Request[Any, Any, Any]) -> bool:
    # async: a plain function would be sent to a worker thread on every request.
    return request.url.path.rstrip("/") in THROTTLED_PATHS


def rate_limit_config(requests_per_minute: int) -> RateLimitConfig:
    return RateLimitConfig(
        rate_limit=("minute", requests_per_minute),
        identifier_for_request=client_address,
        check_throttle_handler=_throttled,
        store=RATE_LIMIT_STORE,
    )
