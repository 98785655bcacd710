"""Back office under ``/admin``: login, stations, attendants, enrollment requests, the monthly
close (a button, admin only) with its CSV/PDF printouts, and the audit log.

Roles: ``admin`` does everything; ``manager`` sees and locks the attendants of its own station
(creating them and setting PINs: hub.web.authoring) and its enrollment requests; ``readonly`` sees everything and changes nothing. Every change
carries the session's CSRF token and lands in the audit log with ``web:<user>``.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.central import attendants, audit, close, report
from hub.central.errors import CentralError
from hub.web import auth
from hub.web.app import client_address, db, page

router = APIRouter(prefix="/admin")
COOKIE = "hub_session"


def current_user(request: Request, conn: psycopg.Connection = Depends(db)) -> auth.User:
    user = auth.session_user(conn, request.cookies.get(COOKIE))
    if user is None:
        raise HTTPException(303, headers={"Location": "/admin/login"})
    return user


def allow(user: auth.User, *roles: str) -> None:
    if user.role not in roles:
        raise HTTPException(403, "Su rol no permite esta acción.")


def check_csrf(user: auth.User, token: str) -> None:
    if not token or token != user.csrf:
        raise HTTPException(403, "Formulario vencido: vuelva a cargar la página.")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return page(request, "login.html")


@router.post("/login")
def login(request: Request, username: str = Form("", max_length=40), password: str = Form("", max_length=200),
          conn: psycopg.Connection = Depends(db)) -> Response:
    if auth.too_many(conn, auth.bucket("login", f"{client_address(request)}/{username}"), 5, 15):
        return page(request, "login.html", 429, error="Demasiados intentos. Espere 15 minutos.")
    if not auth.check_password(conn, username, password):
        return page(request, "login.html", 200, error="Usuario o contraseña incorrectos.")
    response = RedirectResponse("/admin", status_code=303)
    response.set_cookie(COOKIE, auth.open_session(conn, username), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", max_age=auth.SESSION_HOURS * 3600, path="/admin")
    audit.record(conn, f"web:{username}", "web.login")
    return response


@router.post("/logout")
def logout(request: Request, conn: psycopg.Connection = Depends(db)) -> Response:
    auth.close_session(conn, request.cookies.get(COOKIE))
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(COOKIE, path="/admin")
    return response


@router.get("", response_class=HTMLResponse)
def home(request: Request, user: auth.User = Depends(current_user), conn: psycopg.Connection = Depends(db)) -> HTMLResponse:
    mine = user.station_id
    stations = conn.execute(
        "SELECT c.station_id, c.name, c.point_value, s.availability, s.last_event_at,"
        " (SELECT count(*) FROM attendants a WHERE a.station_id = c.station_id) FROM central_stations c"
        " LEFT JOIN stations s USING (station_id) WHERE %s::text IS NULL OR c.station_id = %s ORDER BY 1",
        (mine, mine)).fetchall()
    requests = conn.execute(
        "SELECT request_id, created_at, first_name, surname, document_type, document_number, station_id"
        " FROM enrollment_requests WHERE status = 'pending' AND (%s::text IS NULL OR station_id = %s)"
        " ORDER BY request_id", (mine, mine)).fetchall()
    return page(request, "admin_home.html", user=user, stations=stations, requests=requests)


@router.get("/playeros/{station_id}", response_class=HTMLResponse)
def attendant_list(station_id: str, request: Request, user: auth.User = Depends(current_user),
                   conn: psycopg.Connection = Depends(db)) -> HTMLResponse:
    return attendants_page(request, user, conn, station_id)


def attendants_page(request: Request, user: auth.User, conn: psycopg.Connection, station_id: str,
                    error: str | None = None, status_code: int = 200) -> HTMLResponse:
    if user.role == "manager" and user.station_id != station_id:
        raise HTTPException(403, "Solo puede ver su estación.")
    rows = conn.execute("SELECT attendant_id, display_name, pin_hash IS NOT NULL, locked FROM attendants"
                        " WHERE station_id = %s ORDER BY 1", (station_id,)).fetchall()
    return page(request, "admin_attendants.html", status_code, user=user, station_id=station_id, rows=rows,
                error=error)


@router.post("/playeros/{station_id}/{attendant_id}/bloqueo")
def attendant_lock(station_id: str, attendant_id: str, request: Request, locked: str = Form(...),
                   csrf: str = Form(""), user: auth.User = Depends(current_user),
                   conn: psycopg.Connection = Depends(db)) -> Response:
    check_csrf(user, csrf)
    allow(user, "admin", "manager")
    if user.role == "manager" and user.station_id != station_id:
        raise HTTPException(403, "Solo puede cambiar su estación.")
    attendants.set_locked(conn, f"web:{user.username}", station_id, attendant_id, locked == "si")
    publish_bundle(request, conn, station_id, f"web:{user.username}")
    return RedirectResponse(f"/admin/playeros/{station_id}", status_code=303)


def publish_bundle(request: Request, conn: psycopg.Connection, station_id: str, actor: str) -> None:
    """Publish at once when the web app has a broker and the signing key; else it waits for
    ``loyalty-hub pins publish`` (recorded so the page can say so)."""
    from hub.central.keys import load_pin_key
    from hub.central.publisher import publish_retained

    settings = request.app.state.settings
    central = settings.central
    if not settings.mqtt.url or (central.pin_signing_key_file or central.signing_key_file) is None:
        audit.record(conn, actor, "pin_bundle.pending", {"station": station_id})
        return
    bundle = attendants.build_bundle(conn, load_pin_key(central.signing_key_file, central.pin_signing_key_file),
                                     station_id, days=central.pin_bundle_days)
    publish_retained(settings.mqtt, [(station_id, "pin_bundle", bundle.body)])
    attendants.mark_published(conn, actor, bundle)


@router.get("/cierre", response_class=HTMLResponse)
def closes(request: Request, user: auth.User = Depends(current_user), conn: psycopg.Connection = Depends(db),
           error: str | None = None) -> HTMLResponse:
    allow(user, "admin", "readonly")
    rows = conn.execute("SELECT to_char(month, 'YYYY-MM'), first_closed_by, first_closed_at, last_run_by, runs,"
                        " summary FROM monthly_closes ORDER BY month DESC").fetchall()
    return page(request, "admin_close.html", user=user, rows=rows, error=error)


@router.post("/cierre")
def run_close(request: Request, month: str = Form("", max_length=7), csrf: str = Form(""),
              user: auth.User = Depends(current_user), conn: psycopg.Connection = Depends(db)) -> Response:
    check_csrf(user, csrf)
    allow(user, "admin")
    settings = request.app.state.settings
    try:
        result = close.close_month(conn, f"web:{user.username}", month, expiry_months=settings.central.expiry_months,
                                  zone=settings.chain.zone)
    except CentralError as exc:
        return closes(request, user, conn, error=exc.es)
    return RedirectResponse(f"/admin/cierre/{result.month:%Y-%m}", status_code=303)


@router.get("/cierre/{month}", response_class=HTMLResponse)
def close_detail(month: str, request: Request, user: auth.User = Depends(current_user),
                 conn: psycopg.Connection = Depends(db)) -> HTMLResponse:
    allow(user, "admin", "readonly")
    return page(request, "admin_close_detail.html", user=user, r=_report(conn, month), label=month)


def _report(conn: psycopg.Connection, month: str) -> dict[str, Any]:
    try:
        return close.report_rows(conn, close.parse_month(month))
    except CentralError as exc:
        raise HTTPException(404, exc.es) from None


@router.get("/cierre/{month}/liquidacion.{fmt}")
def close_file(month: str, fmt: str, user: auth.User = Depends(current_user),
               conn: psycopg.Connection = Depends(db)) -> Response:
    allow(user, "admin", "readonly")
    if fmt not in ("csv", "pdf"):
        raise HTTPException(404)
    rows = _report(conn, month)
    with tempfile.TemporaryDirectory(prefix="hub-close-") as tmp:
        path = report.write_pdf(rows, Path(tmp)) if fmt == "pdf" else report.write_csv(rows, Path(tmp))[0]
        body, name = path.read_bytes(), path.name
    return Response(body, media_type="application/pdf" if fmt == "pdf" else "text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/premios", response_class=HTMLResponse)
def rewards_page(request: Request, user: auth.User = Depends(current_user),
                 conn: psycopg.Connection = Depends(db)) -> HTMLResponse:
    from hub.central import rewards

    settings = request.app.state.settings
    mine = (lambda station: user.station_id in (None, station)) if user.role == "manager" else (lambda station: True)
    return page(request, "admin_rewards.html", user=user,
                pending=[r for r in rewards.pending(conn) if mine(r[2])],
                immobilized=[r for r in rewards.immobilized(conn, settings.central.immobilized_days) if mine(r[0])],
                shipments=[r for r in rewards.shipments(conn) if mine(r[1])],
                days=settings.central.immobilized_days)


@router.get("/auditoria", response_class=HTMLResponse)
def audit_log(request: Request, user: auth.User = Depends(current_user),
              conn: psycopg.Connection = Depends(db)) -> HTMLResponse:
    allow(user, "admin", "readonly")
    rows = conn.execute("SELECT at, actor, action, detail FROM audit_log ORDER BY audit_id DESC LIMIT 200").fetchall()
    return page(request, "admin_audit.html", user=user, rows=rows)
