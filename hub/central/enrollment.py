"""Enrollment requests from the website (``/adhesion``) on their way to the stations.

The leader (hub.leader) runs ``run`` every cycle:

1. **fulfil**: a pending request whose document (country, type, compact number) now belongs to
   a customer (the ``customer.created`` the ingest projected into ``customers``) is done;
2. **purge**: requests older than ``enrollment_request_days`` (90) are deleted, whatever their
   state: the personal data a customer typed on the web are kept only that long (the stations
   delete them at the same age, from each request's ``expires_at``);
3. **publish**: a directory delta (same topic, signature and ``seq`` counter as the account
   deltas) carrying the requests that became pending (``enrollment_requests``) and the ids of
   those that stopped being pending (``removed_enrollment_requests``), to the stations whose
   agent announced the ``enrollment_requests`` feature; a station that just started announcing
   it gets every pending request once. Older agents refuse fields they do not know, so they get
   none (the requests stay in the back office for them).

Only what a station needs to pre-fill its enrollment form travels. Logs carry counts and
request ids, never names, documents or contacts.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pydantic import ValidationError

from agent.customers.documents import DocumentError, validate_document
from agent.loyalty.enrollment_requests import EnrollmentRequestIn
from hub import directory
from hub.central import audit
from hub.central.signed_publish import catalog_rows

log = logging.getLogger(__name__)
ACTOR = "hub:scheduler"
FEATURE = "enrollment_requests"
_COLUMNS = ("request_id, created_at, document_country, document_type, document_number, first_name, surname,"
            " phone, email, station_id")


def compact(country: str, doc_type: str, number: str) -> str:
    """The document number as the agents store it (their own validator), so a request and the
    customer it becomes compare equal; raises ``DocumentError`` (Spanish message) if invalid."""
    return validate_document(country, doc_type, number).number


def fulfil(conn: psycopg.Connection) -> list[int]:
    with conn.transaction():
        done = [r[0] for r in conn.execute(
            "UPDATE enrollment_requests r SET status = 'done', closed_at = now(), customer_id = c.customer_id"
            " FROM customers c WHERE r.status = 'pending' AND c.document_country = r.document_country"
            " AND c.document_type = r.document_type AND c.document_number = r.document_compact"
            " RETURNING r.request_id")]
        for request_id in done:
            audit.record(conn, ACTOR, "enrollment_request.fulfilled", {"request_id": request_id})
    return done


def purge(conn: psycopg.Connection, days: int, now: datetime) -> int:
    with conn.transaction():
        gone = conn.execute("DELETE FROM enrollment_requests WHERE created_at <= %s", (now - timedelta(days=days),)
                            ).rowcount
        if gone:
            audit.record(conn, ACTOR, "enrollment_request.purged", {"count": gone, "days": days})
    return gone


def _requests(rows: list[tuple[Any, ...]], days: int) -> list[dict[str, Any]]:
    """Rows as the agent's model wants them; one it would refuse (it would refuse the whole delta)
    is left out and only its id logged."""
    out = []
    for row in rows:
        request = _request(row, days)
        try:
            EnrollmentRequestIn.model_validate(request)
        except ValidationError:
            log.warning("solicitud de adhesión %s no cabe en el modelo de las estaciones; no se envía "
                        "[enrollment_request_unfit]", row[0])
            continue
        out.append(request)
    return out


def _request(row: tuple[Any, ...], days: int) -> dict[str, Any]:
    request_id, created, country, doc_type, number, first, surname, phone, email, station = row
    return {"request_id": f"web-{request_id}", "requested_at": directory.iso_ms(created),
            "expires_at": directory.iso_ms(created + timedelta(days=days)), "document_country": country,
            "document_type": doc_type, "document_number": number, "first_name": first, "surname": surname,
            "phone": phone, "email": email, "preferred_station": station}


def publish(conn: psycopg.Connection, client: mqtt.Client, key: Ed25519PrivateKey, days: int) -> int:
    """Send what changed (and everything to newly capable stations); return messages sent."""
    capable = conn.execute("SELECT station_id, enrollment_full_sent FROM stations WHERE %s = ANY(features)"
                           " ORDER BY station_id", (FEATURE,)).fetchall()
    changes = conn.execute(
        f"SELECT {_COLUMNS}, status FROM enrollment_requests WHERE (status = 'pending' AND announced IS NULL)"
        " OR (status <> 'pending' AND announced = 'pending') ORDER BY request_id").fetchall()
    fresh = [s for s, full_sent in capable if not full_sent]
    current = [s for s, full_sent in capable if full_sent]
    deliveries: list[tuple[str, dict[str, Any]]] = []
    catalog = catalog_rows(conn) if (fresh or (changes and current)) else None
    if changes and current and catalog is not None:
        body = _body(conn, catalog, _requests([r[:-1] for r in changes if r[-1] == "pending"], days),
                     [f"web-{r[0]}" for r in changes if r[-1] != "pending"])
        deliveries += [(station, body) for station in current]
    if fresh and catalog is not None:
        everything = conn.execute(f"SELECT {_COLUMNS} FROM enrollment_requests WHERE status = 'pending'"
                                  " ORDER BY request_id").fetchall()
        body = _body(conn, catalog, _requests(everything, days), [])
        deliveries += [(station, body) for station in fresh]
    if deliveries:
        directory.publish_signed(client, key, deliveries)
    with conn.transaction():
        for status, ids in (("pending", [r[0] for r in changes if r[-1] == "pending"]),
                            ("removed", [r[0] for r in changes if r[-1] != "pending"])):
            if ids:
                conn.execute("UPDATE enrollment_requests SET announced = %s WHERE request_id = ANY(%s)", (status, ids))
        if fresh:
            conn.execute("UPDATE stations SET enrollment_full_sent = true WHERE station_id = ANY(%s)"
                         " AND %s = ANY(features)", (fresh, FEATURE))
    if deliveries:
        log.info("solicitudes de adhesión: %d cambios a %d estaciones, todas las pendientes a %d estaciones nuevas "
                 "[enrollment_requests_sent]",
                 len(changes), len(current) if changes else 0, len(fresh))
    return len(deliveries)


def _body(conn: psycopg.Connection, catalog: dict[str, list[Any]], requests: list[dict[str, Any]],
          removed: list[str]) -> dict[str, Any]:
    # A delta like the account ones (the catalog rides along, no accounts), so the station's
    # "newer seq wins" holds across all of them.
    body = directory.delta_body(directory.reserve_seq(conn), directory.iso_ms(datetime.now(timezone.utc)), [], [],
                                catalog)
    body["enrollment_requests"], body["removed_enrollment_requests"] = requests, removed
    return body


def run(conn: psycopg.Connection, client: mqtt.Client, key: Ed25519PrivateKey, days: int,
        now: datetime | None = None) -> int:
    fulfil(conn)
    purge(conn, days, now or datetime.now(timezone.utc))
    return publish(conn, client, key, days)


__all__ = ["DocumentError", "compact", "fulfil", "publish", "purge", "run"]
