"""Customer pages: ``/saldo`` (balance and last 30 movements) and ``/adhesion`` (enrollment
request; the leader sends it to the stations' directory, hub.central.enrollment).

Balance query: card number + document number, both must belong to the same active card's
account holder. Any mismatch (unknown card, other document, blocked card) gets the same
answer, so the page never tells whether a card or a document exists; attempts are limited per
client address and per card number.
"""
from __future__ import annotations

import re
from typing import Any

import psycopg
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from hub.central import enrollment as web_requests
from hub.web.app import client_address, db, page
from hub.web.auth import bucket, too_many

router = APIRouter()
GENERIC = "No pudimos verificar los datos. Revise el número de tarjeta y el documento."
LIMITED = "Demasiados intentos. Espere 15 minutos y vuelva a intentar."
PER_ADDRESS, PER_CARD, WINDOW_MIN = 20, 5, 15


def _plain(value: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", value).upper()[:32]


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/saldo", status_code=303)


@router.get("/saldo", response_class=HTMLResponse)
def balance_form(request: Request) -> HTMLResponse:
    return page(request, "saldo.html")


@router.post("/saldo", response_class=HTMLResponse)
def balance(request: Request, card: str = Form("", max_length=64), document: str = Form("", max_length=64),
            conn: psycopg.Connection = Depends(db)) -> HTMLResponse:
    card, document = _plain(card), _plain(document)
    if (too_many(conn, bucket("ip", client_address(request)), PER_ADDRESS, WINDOW_MIN)
            or too_many(conn, bucket("card", card), PER_CARD, WINDOW_MIN)):
        return page(request, "saldo.html", 429, error=LIMITED)
    holder = _holder(conn, card, document) if card and document else None
    if holder is None:
        return page(request, "saldo.html", 200, error=GENERIC)
    return page(request, "saldo_result.html", **holder)


def _holder(conn: psycopg.Connection, card: str, document: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT a.account_id, a.balance, c.data FROM cards k JOIN accounts a USING (account_id)"
        " JOIN customers c ON c.customer_id = a.customer_id"
        " WHERE k.card_number = %s AND k.state = 'issued' AND upper(c.document_number) = %s", (card, document)).fetchone()
    if row is None:
        return None
    account_id, points, data = row
    movements = conn.execute(
        "SELECT m.occurred_at, coalesce(s.name, m.station_id), m.kind, m.points FROM point_movements m"
        " LEFT JOIN central_stations s USING (station_id) WHERE m.account_id = %s"
        " ORDER BY m.occurred_at DESC, m.movement_id DESC LIMIT 30", (account_id,)).fetchall()
    name = " ".join(p for p in (data.get("first_name"), data.get("first_surname"), data.get("business_name")) if p)
    return {"name": name, "document": (data.get("document") or {}).get("display", ""), "balance": points,
            "movements": [{"date": at[:10], "time": at[11:16], "station": station, "kind": kind, "points": pts}
                          for at, station, kind, pts in movements]}


@router.get("/adhesion", response_class=HTMLResponse)
def enrollment_form(request: Request, conn: psycopg.Connection = Depends(db)) -> HTMLResponse:
    return page(request, "adhesion.html", stations=_stations(conn), values={})


def _stations(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute("SELECT station_id, name FROM central_stations ORDER BY name").fetchall()


@router.post("/adhesion", response_class=HTMLResponse)
def enrollment(request: Request, first_name: str = Form("", max_length=80), surname: str = Form("", max_length=80),
               document_country: str = Form("CL", max_length=2), document_type: str = Form("", max_length=10),
               document_number: str = Form("", max_length=32), phone: str = Form("", max_length=20),
               email: str = Form("", max_length=120), station_id: str = Form("", max_length=64),
               consent: str = Form(""), conn: psycopg.Connection = Depends(db)) -> HTMLResponse:
    values = {"first_name": first_name.strip(), "surname": surname.strip(), "document_country": document_country,
              "document_type": document_type, "document_number": document_number.strip(), "phone": phone.strip(),
              "email": email.strip(), "station_id": station_id}
    errors = _enrollment_errors(conn, values, consent == "si")
    if too_many(conn, bucket("adhesion", client_address(request)), PER_ADDRESS, WINDOW_MIN):
        errors = [LIMITED]
    if errors:
        return page(request, "adhesion.html", 422, stations=_stations(conn), values=values, errors=errors)
    conn.execute("INSERT INTO enrollment_requests(first_name, surname, document_country, document_type,"
                 " document_number, document_compact, phone, email, station_id, consent) VALUES (%(first_name)s,"
                 " %(surname)s, %(document_country)s, %(document_type)s, %(document_number)s, %(compact)s,"
                 " nullif(%(phone)s, ''), nullif(%(email)s, ''), %(station_id)s, true)",
                 {**values, "compact": web_requests.compact(values["document_country"], values["document_type"],
                                                          values["document_number"])})
    return page(request, "adhesion_ok.html")


def _enrollment_errors(conn: psycopg.Connection, v: dict[str, str], consent: bool) -> list[str]:
    errors = []
    if not v["first_name"] or not v["surname"]:
        errors.append("Escriba su nombre y su apellido.")
    kind_ok = v["document_country"] in ("CL", "AR", "CO", "PE", "UY") and v["document_type"] in ("RUT", "DNI", "CC", "CE")
    if not kind_ok:
        errors.append("Elija el país y el tipo de documento.")
    if not re.fullmatch(r"[0-9A-Za-z.\-]{5,20}", v["document_number"]):
        errors.append("El número de documento no es válido.")
    elif kind_ok:  # the agents' own check (check digit, length per country and type)
        try:
            web_requests.compact(v["document_country"], v["document_type"], v["document_number"])
        except web_requests.DocumentError as exc:
            errors.append(exc.es)
    if v["email"] and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v["email"]):
        errors.append("El correo electrónico no es válido.")
    if v["phone"] and not re.fullmatch(r"\+?[0-9 ]{7,20}", v["phone"]):
        errors.append("El teléfono no es válido.")
    if not conn.execute("SELECT 1 FROM central_stations WHERE station_id = %s", (v["station_id"],)).fetchone():
        errors.append("Elija la estación donde completará la adhesión.")
    if not consent:
        errors.append("Debe aceptar el tratamiento de sus datos para adherirse.")
    return errors
