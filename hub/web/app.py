"""The web app: one PostgreSQL connection per request (short pages, few users), Jinja2
templates with autoescape, a strict Content-Security-Policy (no inline scripts, nothing from
another origin), and the customer and back-office routers."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from hub.config import Settings

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def create_app(settings: Settings) -> FastAPI:
    from hub.web import admin, authoring, customer

    app = FastAPI(title="Programa de puntos", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(customer.router)
    app.include_router(admin.router)
    app.include_router(authoring.router)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"  # balances and back-office pages are personal
        return response

    return app


def db(request: Request) -> Iterator[psycopg.Connection]:
    settings: Settings = request.app.state.settings
    with psycopg.connect(settings.database.url or "", autocommit=True,
                         connect_timeout=settings.database.connect_timeout_s) as conn:
        yield conn


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, context, status_code=status_code)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
