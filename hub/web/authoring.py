"""Back-office authoring under ``/admin``: attendants (create, set or reset the PIN) and the
configuration (earning program, tiers, messages, reward catalog) with its publication.

The same functions as the CLI do the work (``hub.central.attendants``, ``hub.central.authoring``,
``hub.central.signed_publish``), so the PIN policy and the station's own models validate what
the web accepts; their Spanish message is what the page shows. Roles: ``admin`` does all;
``manager`` creates attendants and sets PINs at its own station only; ``readonly`` sees the
configuration and changes nothing. A PIN is never shown back, stored in clear or logged.
"""
from __future__ import annotations

import json

import psycopg
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.central import attendants, authoring, signed_publish
from hub.central.errors import CentralError
from hub.web import auth
from hub.web.admin import allow, attendants_page, check_csrf, current_user, publish_bundle
from hub.web.app import db, page

router = APIRouter(prefix="/admin")
LABELS = {"program": "Programa de puntos", "tiers": "Niveles", "messages": "Mensajes a clientes",
          "rewards": "Catálogo de premios"}


def _own_station(user: auth.User, station_id: str) -> None:
    allow(user, "admin", "manager")
    if user.role == "manager" and user.station_id != station_id:
        raise HTTPException(403, "Solo puede cambiar su estación.")


@router.post("/playeros/{station_id}")
def attendant_add(station_id: str, request: Request, attendant_id: str = Form("", max_length=40),
                  name: str = Form("", max_length=100), csrf: str = Form(""),
                  user: auth.User = Depends(current_user), conn: psycopg.Connection = Depends(db)) -> Response:
    check_csrf(user, csrf)
    _own_station(user, station_id)
    try:
        attendants.add_attendant(conn, f"web:{user.username}", station_id, attendant_id.strip(), name.strip())
    except CentralError as exc:
        return attendants_page(request, user, conn, station_id, error=exc.es, status_code=422)
    return RedirectResponse(f"/admin/playeros/{station_id}", status_code=303)


@router.post("/playeros/{station_id}/{attendant_id}/pin")
def attendant_pin(station_id: str, attendant_id: str, request: Request, pin: str = Form("", max_length=16),
                  csrf: str = Form(""), user: auth.User = Depends(current_user),
                  conn: psycopg.Connection = Depends(db)) -> Response:
    check_csrf(user, csrf)
    _own_station(user, station_id)
    settings = request.app.state.settings
    actor = f"web:{user.username}"
    try:
        attendants.set_pin(conn, actor, station_id, attendant_id, pin, pepper_dir=settings.central.pepper_dir,
                           min_length=settings.central.pin_min_length)
        publish_bundle(request, conn, station_id, actor)
    except CentralError as exc:
        return attendants_page(request, user, conn, station_id, error=exc.es, status_code=422)
    return RedirectResponse(f"/admin/playeros/{station_id}", status_code=303)


@router.get("/configuracion", response_class=HTMLResponse)
def config_view(request: Request, user: auth.User = Depends(current_user),
                conn: psycopg.Connection = Depends(db)) -> HTMLResponse:
    return config_page(request, user, conn)


def config_page(request: Request, user: auth.User, conn: psycopg.Connection, error: str | None = None,
                drafts: dict[str, str] | None = None, status_code: int = 200, notice: str | None = None) -> HTMLResponse:
    allow(user, "admin", "readonly")
    documents = {kind: json.dumps(authoring.load(conn, kind) or ([] if kind != "program" else {}), indent=2,
                                  ensure_ascii=False) for kind in authoring.KINDS}
    published = conn.execute("SELECT kind, max(version), max(published_at) FROM config_published GROUP BY 1"
                             " ORDER BY 1").fetchall()
    return page(request, "admin_config.html", status_code, user=user, documents={**documents, **(drafts or {})},
                labels=LABELS, published=published, error=error, notice=notice)


@router.post("/configuracion/{kind}")
def config_save(kind: str, request: Request, body: str = Form("", max_length=2_000_000), csrf: str = Form(""),
                user: auth.User = Depends(current_user), conn: psycopg.Connection = Depends(db)) -> Response:
    check_csrf(user, csrf)
    allow(user, "admin")
    if kind not in authoring.KINDS:
        raise HTTPException(404)
    try:
        document = json.loads(body)
    except ValueError as exc:
        return config_page(request, user, conn, error=f"{LABELS[kind]}: el texto no es JSON válido (línea {exc.lineno})",
                           drafts={kind: body}, status_code=422)  # type: ignore[attr-defined]
    try:
        authoring.store(conn, f"web:{user.username}", kind, document)
    except CentralError as exc:
        return config_page(request, user, conn, error=f"{LABELS[kind]}: {exc.es}", drafts={kind: body},
                           status_code=422)
    return config_page(request, user, conn, notice=f"{LABELS[kind]}: guardado (falta publicarlo).")


@router.post("/configuracion-publicar")
def config_publish(request: Request, csrf: str = Form(""), user: auth.User = Depends(current_user),
                   conn: psycopg.Connection = Depends(db)) -> Response:
    """Sign the program and the catalog and publish them to every station (as ``config publish``)."""
    from hub.central.keys import load_signing_key
    from hub.central.publisher import known_stations, publish_retained

    check_csrf(user, csrf)
    allow(user, "admin")
    settings = request.app.state.settings
    actor = f"web:{user.username}"
    try:
        key = load_signing_key(settings.central.signing_key_file)
        # The catalog alone when no program was authored yet (as ``config publish --only catalog``).
        signed = ([signed_publish.sign_rules(conn, key, actor)] if authoring.load(conn, "program") else []) \
            + [signed_publish.sign_catalog(conn, key, actor)]
        stations = known_stations(conn)
        publish_retained(settings.mqtt, [(s, doc.kind, doc.body) for doc in signed for s in stations])
    except CentralError as exc:
        return config_page(request, user, conn, error=exc.es, status_code=422)
    versions = ", ".join(f"{doc.kind} versión {doc.version}" for doc in signed)
    return config_page(request, user, conn, notice=f"Publicado en {len(stations)} estaciones: {versions}.")
