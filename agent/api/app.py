"""The FastAPI application: routers, error handlers, body limits, CORS."""
from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from agent import __version__
from agent.api import (
    apidocs,
    console,
    routes_biometric,
    routes_cards,
    routes_customers,
    routes_enrollment,
    routes_health,
    routes_idcard,
    routes_loyalty,
    routes_printing,
    routes_simulated,
    routes_sync,
)
from agent.api.deps import require_client
from agent.api.hosts import HostCheck
from agent.api.limits import AsyncSlots, BodySizeLimit
from agent.api.openapi import install_openapi
from agent.api.problems import install_handlers
from agent.api.streams import StreamRegistry
from agent.config import Settings
from agent.station import Station

# Routers behind a bearer token; health is added separately, without one.
AUTHENTICATED_ROUTERS: tuple[APIRouter, ...] = (
    routes_customers.router,
    routes_enrollment.router,
    routes_biometric.router,
    routes_cards.router,
    routes_idcard.router,
    routes_idcard.photos_router,
    routes_loyalty.router,
    routes_printing.router,
    routes_sync.router,
)


def create_app(settings: Settings, station: Station) -> FastAPI:
    app = FastAPI(
        title="Station loyalty agent",
        version=__version__,
        description=(
            "Local API of the station loyalty agent. Every route except /v1/health (and /metrics from the "
            "station itself) needs "
            "`Authorization: Bearer <token>`. Errors are RFC 9457 `application/problem+json` (schema "
            "`Problem`) with a stable `code` and per-field `errors`; messages are Spanish unless "
            "`Accept-Language: en`. The POSTs that create something (customers, sales, returns, voids, "
            "redemptions) accept an `Idempotency-Key`; a replayed answer carries `Idempotent-Replayed: true`. "
            "Send `X-Attendant-Id` on changes to customers to record the attendant."
        ),
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.station = station
    app.state.pin_slots = AsyncSlots(settings.cards.pins.max_parallel_checks)
    app.state.streams = StreamRegistry(settings.api.max_streams_per_client)
    install_handlers(app)
    install_openapi(app)
    app.include_router(routes_health.router)
    # The technician console (loopback only, see agent/api/console.py) and the local API docs.
    app.include_router(console.router)
    app.include_router(apidocs.router)
    for router in AUTHENTICATED_ROUTERS:
        app.include_router(router, dependencies=[Depends(require_client)])
    if settings.devices.simulated:  # the simulated card reader exists only in simulated mode
        app.include_router(routes_simulated.router, dependencies=[Depends(require_client)])
    if settings.api.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.api.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Accept-Language",
                                          "X-Attendant-Id"])
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)
    if settings.monitoring.metrics_enabled:
        _install_metrics(app, station)
    # Outermost: a request for another host name is refused before anything else runs.
    app.add_middleware(HostCheck, allowed=[settings.api.host, *settings.api.allowed_hosts])
    return app


def _install_metrics(app: FastAPI, station: Station) -> None:
    from agent.api import metrics
    from agent.ops.metrics import build_registry

    app.state.metrics_registry, latency = build_registry(station)
    app.include_router(metrics.router)
    app.add_middleware(metrics.RequestTiming, histogram=latency)  # outside all but the host check: times the whole request
