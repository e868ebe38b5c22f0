"""Per-address limits on the unauthenticated write routes."""

from __future__ import annotations

from litestar.middleware.rate_limit import RateLimitConfig

from healthcare.entrypoints.http.origin import client_address

# Registration and refresh share one budget per address (the limiter's key is the address
# alone); login has its own brakes (healthcare.adapters.throttling.login). The limiter is
# attached to those two routes only (see app.py), so no other request pays for it.
RATE_LIMIT_STORE = "rate_limit"


def rate_limit_config(requests_per_minute: int) -> RateLimitConfig:
    return RateLimitConfig(
        rate_limit=("minute", requests_per_minute),
        identifier_for_request=client_address,
        store=RATE_LIMIT_STORE,
    )
