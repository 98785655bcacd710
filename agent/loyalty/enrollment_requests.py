"""Enrollment requests customers made on the chain's website (head office ``/adhesion``),
received in the directory deltas, so the attendant finds the form pre-filled when the customer
comes to any station.

Head office sends each pending request once (``enrollment_requests``) and its id again in
``removed_enrollment_requests`` when it is fulfilled (the customer was enrolled at some
station), rejected or withdrawn. Each request carries its own ``expires_at``: the station
deletes expired ones whenever a delta arrives and never lists one, so personal data a customer
typed on the web do not outlive the request even if head office's removal never arrives. A
request whose document already belongs to a customer of this station is not listed either
(enrolled here before head office heard of it).

Only what pre-fills the form travels: document, names, the contact the customer typed, the
request's id and date, the preferred station.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agent.clock import iso
from agent.customers.documents import DocumentError, validate_document

from .models import Code


class EnrollmentRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: Code
    requested_at: AwareDatetime
    expires_at: AwareDatetime
    document_country: str = Field(min_length=2, max_length=2, pattern=r"^[A-Z]{2}$")
    document_type: str = Field(min_length=1, max_length=10, pattern=r"^[A-Z]+$")
    document_number: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z.\- ]+$")
    first_name: str = Field(min_length=1, max_length=80)
    surname: str = Field(min_length=1, max_length=80)
    phone: str | None = Field(default=None, max_length=20, pattern=r"^\+?[0-9 ]{7,20}$")
    # The website's own checks (hub.web.customer), not stricter: a request the site accepted must
    # not make the station refuse the whole delta.
    email: str | None = Field(default=None, max_length=120, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    preferred_station: Code | None = None


def _compact(country: str, doc_type: str, number: str) -> str:
    """The customer table's form of the number, so a request matches its customer exactly."""
    try:
        return validate_document(country, doc_type, number).number
    except DocumentError:
        return number.strip().upper()


def apply(conn: sqlite3.Connection, requests: list[EnrollmentRequestIn], removed: list[str], now: str) -> None:
    """Inside the delta's write transaction: upsert, remove, and purge what expired by ``now``."""
    conn.executemany(
        "INSERT OR REPLACE INTO loyalty_enrollment_requests(request_id, requested_at, expires_at, doc_country,"
        " doc_type, doc_number, first_name, surname, phone, email, preferred_station)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(r.request_id, iso(r.requested_at), iso(r.expires_at), r.document_country, r.document_type,
          _compact(r.document_country, r.document_type, r.document_number), r.first_name, r.surname, r.phone,
          r.email, r.preferred_station) for r in requests],
    )
    conn.executemany("DELETE FROM loyalty_enrollment_requests WHERE request_id = ?", [(r,) for r in removed])
    purge(conn, now)


def purge(conn: sqlite3.Connection, now: str) -> int:
    return conn.execute("DELETE FROM loyalty_enrollment_requests WHERE expires_at <= ?", (now,)).rowcount


def pending(conn: sqlite3.Connection, now: datetime, document: tuple[str, str, str] | None = None,
            limit: int = 100) -> list[dict[str, Any]]:
    """Requests not expired and not yet a customer here, newest first; ``document`` =
    (country, type, number as typed) narrows to one person."""
    where, params = "r.expires_at > ?", [iso(now)]
    if document is not None:
        country, doc_type = document[0].upper(), document[1].upper()
        where += " AND r.doc_country = ? AND r.doc_type = ? AND r.doc_number = ?"
        params += [country, doc_type, _compact(country, doc_type, document[2])]
    rows = conn.execute(
        "SELECT r.* FROM loyalty_enrollment_requests r WHERE " + where + " AND NOT EXISTS (SELECT 1 FROM customers c"
        " WHERE c.doc_country = r.doc_country AND c.doc_type = r.doc_type AND c.doc_number = r.doc_number)"
        " ORDER BY r.requested_at DESC, r.request_id LIMIT ?", (*params, limit)).fetchall()
    return [{"request_id": r["request_id"], "requested_at": r["requested_at"], "expires_at": r["expires_at"],
             "document": {"country": r["doc_country"], "type": r["doc_type"], "number": r["doc_number"]},
             "first_name": r["first_name"], "surname": r["surname"], "phone": r["phone"], "email": r["email"],
             "preferred_station": r["preferred_station"]} for r in rows]
