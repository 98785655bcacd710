"""The FastAPI application: routers, error handlers, body limits, CORS."""
from __future__ import annotations

import importlib

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from agent import __version__
from agent.api.deps import require_client
from agent.api.limits import BodySizeLimit
from agent.api.openapi import install_openapi
from agent.api.problems import install_handlers
from agent.config import Settings
from agent.services import Services

# Routers behind a bearer token; health is added separately, without one.
AUTHENTICATED_ROUTERS: tuple[str, ...] = (
    "agent.api.routes_customers",
    "agent.api.routes_enrollment",
    "agent.api.routes_biometric",
    "agent.api.routes_cards",
    "agent.api.routes_idcard",
    "agent.api.routes_loyalty",
    "agent.api.routes_sync",
)


def create_app(settings: Settings, services: Services) -> FastAPI:
    app = FastAPI(
        title="Station loyalty agent",
        version=__version__,
        description=(
            "Local API of the station loyalty agent. Every route except /v1/health needs "
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
    app.state.services = services
    install_handlers(app)
    install_openapi(app)
    from agent.api import routes_health

    app.include_router(routes_health.router)
    for module_name in AUTHENTICATED_ROUTERS:
        module = importlib.import_module(module_name)
        app.include_router(module.router, dependencies=[Depends(require_client)])
    if settings.devices.simulated:  # the simulated card reader exists only in simulated mode
        from agent.api import routes_simulated

        app.include_router(routes_simulated.router, dependencies=[Depends(require_client)])
    if settings.api.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.api.cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "Accept-Language",
                                          "X-Attendant-Id"])
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)
    return app
