"""Enrollment helpers for the POS: what it must ask before enrolling, and how many were enrolled.

Seed 000 has "campos obligatorios mínimos" the POS should know before its first 422; seed 003's
screen shows "Usuarios enrolados: N". Counts come from the customers' creation rows and the
change history's first row (which names the POS and the attendant), by day in the station's
time zone.
"""
from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from agent.clock import iso
from agent.customers.documents import document_types, is_tax_id

MIGRATIONS: list[tuple[str, str]] = [
    ("enrollment_001_by_created", "CREATE INDEX customers_by_created ON customers(created_at);"),
]

CONSENTS = ("offers", "partner_programs", "data_processing", "biometrics")
MAX_STATS_DAYS = 366


def requirements(required_fields: dict[str, list[str]], countries: list[str], *, photos_required: bool,
                 fingerprint_available: bool) -> dict[str, Any]:
    """Mandatory fields per country and customer kind, and the photo and fingerprint policy."""
    out: dict[str, Any] = {}
    for country in countries:
        types = document_types(country)
        tax_types = [t for t in types if is_tax_id(country, t)]
        out[country] = {
            "document_types": types,
            "kinds": {
                "natural": ["document", *required_fields.get(country, [])],
                # A company's document may itself be its tax id (RUT, NIT, RUC, CUIT); else tax_id is needed.
                "juridica": ["document", "business_name", "tax_id"],
                "gobierno": ["document", "business_name"],
            },
            "tax_id_document_types": tax_types,
        }
    return {
        "countries": out,
        "photos": {"front_and_back_required": photos_required},
        "fingerprint": {"available": fingerprint_available, "required": False, "consent": "biometrics"},
        "consents": list(CONSENTS),
    }


def _attendant(actor: str | None) -> tuple[str | None, str | None]:
    """``pos:pos-1/attendant:P-017`` -> ("pos-1", "P-017").

    >>> _attendant("pos:pos-1/attendant:P-017"), _attendant("pos:pos-2"), _attendant("cli")
    (('pos-1', 'P-017'), ('pos-2', None), (None, None))
    """
    if not actor or not actor.startswith("pos:"):
        return None, None
    pos, _, attendant = actor[4:].partition("/attendant:")
    return pos or None, attendant or None


def stats(conn: sqlite3.Connection, first: date, last: date, zone: ZoneInfo) -> dict[str, Any]:
    """Customers enrolled per local day (``first``..``last`` inclusive) and per attendant, and in all."""
    start = datetime.combine(first, time(), zone)
    end = datetime.combine(last + timedelta(days=1), time(), zone)
    rows = conn.execute(
        "SELECT c.created_at, (SELECT h.actor FROM customer_changes h WHERE h.customer_id = c.id"
        " ORDER BY h.at, h.id LIMIT 1) AS actor FROM customers c WHERE c.created_at >= ? AND c.created_at < ?",
        (iso(start), iso(end))).fetchall()
    per_day: dict[str, Counter[str]] = defaultdict(Counter)
    per_attendant: Counter[tuple[str | None, str | None]] = Counter()
    for row in rows:
        day = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")).astimezone(zone).date().isoformat()
        pos, attendant = _attendant(row["actor"])
        per_day[day][attendant or ""] += 1
        per_attendant[(attendant, pos)] += 1
    total = conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0]
    return {
        "from": first.isoformat(), "to": last.isoformat(), "timezone": zone.key,
        "total_enrolled": total, "enrolled_in_range": len(rows),
        "days": [{"date": day, "count": sum(c.values()),
                  "by_attendant": [{"attendant_id": a or None, "count": n} for a, n in sorted(c.items())]}
                 for day, c in sorted(per_day.items())],
        "by_attendant": [{"attendant_id": a, "pos": p, "count": n}
                         for (a, p), n in sorted(per_attendant.items(), key=lambda kv: (-kv[1], kv[0][0] or ""))],
    }
