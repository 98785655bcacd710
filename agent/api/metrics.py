"""``GET /metrics`` (Prometheus text format) and the middleware that times every request.

Access: from the station itself (loopback) without a token, so a local Prometheus agent or
node exporter scrapes it; from anywhere else (an API bound to a LAN address) only with a POS
token, like the rest of the API. The latency histogram is labelled with the route template
(``/v1/customers/{customer_id}``), never the concrete path, so ids do not become series.
"""
from __future__ import annotations

import ipaddress
import time
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

# The classic text format every Prometheus (2.x included) parses.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

from agent.api.deps import _bearer, require_client

router = APIRouter(tags=["operations"])


def is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # not an address (a proxy's or test client's name): ask for a token


@router.get("/metrics", summary="Prometheus metrics (loopback without token; otherwise a POS token)",
            response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Metrics"}})
async def metrics(request: Request,
                  credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Response:
    if not is_loopback(request):
        await require_client(request, credentials)
    registry: CollectorRegistry = request.app.state.metrics_registry
    # Collecting reads SQLite: off the event loop, like every other database call of the API.
    from starlette.concurrency import run_in_threadpool

    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE)


class RequestTiming:
    """Pure ASGI (no BaseHTTPMiddleware): one ``perf_counter`` pair and one histogram update."""

    def __init__(self, app: Any, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.histogram.labels(scope["method"], template, f"{status // 100}xx").observe(
                time.perf_counter() - started)
