"""``GET /metrics``: the Prometheus text format, for a scraper that sends ``METRICS_TOKEN``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler

from healthcare.domain.errors import AuthenticationFailed

if TYPE_CHECKING:  # the module is imported only when metrics are on
    from healthcare.entrypoints.metrics import Metrics, Sampler


def metrics_handler(metrics: Metrics, sampler: Sampler, token: str) -> HTTPRouteHandler:
    from healthcare.entrypoints.metrics import CONTENT_TYPE, token_matches  # noqa: PLC0415

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def scrape(request: Request[Any, Any, Any]) -> Response[bytes]:
        authorization = next(
            (v for k, v in request.scope["headers"] if k == b"authorization"), b""
        ).decode("latin-1")
        if not token_matches(token, authorization):
            raise AuthenticationFailed("Send the metrics token: `Authorization: Bearer <token>`")
        sampler.sample()  # this worker's gauges as they are now
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return scrape
