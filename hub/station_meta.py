"""Station messages other than events: availability, status, alerts, replay results, rejected
configuration. Each updates the ``stations`` row or raises an alert; a malformed one is
logged (without its content) and dropped: these are state reports, the next one supersedes it.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any

import psycopg

from hub.alerts import raise_alert

log = logging.getLogger(__name__)
_STATION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def handle(conn: psycopg.Connection, messages: list[tuple[str, bytes]]) -> None:
    """Record a group of station messages in one transaction (a fleet reconnecting after a
    broker restart sends a thousand retained ``availability`` messages at once)."""
    parsed = [p for p in (_parse(topic, payload) for topic, payload in messages) if p is not None]
    if not parsed:
        return
    with conn.pipeline(), conn.transaction(), conn.cursor() as cur:
        cur.execute("INSERT INTO stations(station_id) SELECT DISTINCT unnest(%b::text[]) ON CONFLICT DO NOTHING",
                    (sorted({station for station, _, _ in parsed}),))
        for station, leaf, body in parsed:
            _HANDLERS[leaf](cur, station, body)


def _parse(topic: str, payload: bytes) -> tuple[str, str, dict[str, Any]] | None:
    parts = topic.split("/")
    if len(parts) < 5 or not _STATION.match(parts[3]):
        return None
    station, leaf = parts[3], "/".join(parts[4:])
    if not payload or leaf not in _HANDLERS:
        return None  # an empty retained message clears a topic: nothing to record
    try:
        body = json.loads(payload)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        log.warning("la estación %s envió un mensaje %s mal formado; se ignora [station_message_malformed]", station, leaf)
        return None
    return station, leaf, body


def _availability(cur: psycopg.Cursor, station: str, body: dict[str, Any]) -> None:
    state = body.get("state")
    if state not in ("online", "offline"):
        return
    # ``features`` (optional downlink fields the agent accepts) comes with "online" only; an agent
    # that starts accepting enrollment requests gets every pending one again (hub.central.enrollment).
    raw = body.get("features")
    features = None if state != "online" else \
        sorted({f for f in raw if isinstance(f, str) and len(f) <= 64})[:32] if isinstance(raw, list) else []
    cur.execute("UPDATE stations SET availability = %s, availability_at = now(),"
                " agent_version = COALESCE(%s, agent_version), features = COALESCE(%s::text[], features),"
                " enrollment_full_sent = enrollment_full_sent AND features = COALESCE(%s::text[], features)"
                " WHERE station_id = %s",
                (state, body.get("version") if isinstance(body.get("version"), str) else None, features, features,
                 station))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _status(cur: psycopg.Cursor, station: str, body: dict[str, Any]) -> None:
    cur.execute("UPDATE stations SET last_status = %s, status_at = now(), pending = %s, unconfirmed = %s"
                " WHERE station_id = %s",
                (json.dumps(body), _int(body.get("pending")), _int(body.get("delivered")), station))


def _alert(cur: psycopg.Cursor, station: str, body: dict[str, Any]) -> None:
    kind = body.get("type") if isinstance(body.get("type"), str) else "unknown"
    raise_alert(cur, station, "station", kind[:64], {k: v for k, v in body.items() if k != "type"})


def _replay_result(cur: psycopg.Cursor, station: str, body: dict[str, Any]) -> None:
    status = body.get("status") if body.get("status") in ("ok", "partial", "rejected") else "rejected"
    request_id = body.get("request_id") if isinstance(body.get("request_id"), str) else None
    cur.execute("UPDATE replay_requests SET answered_at = now(), status = %s, result = %s"
                " WHERE request_id = %s AND station_id = %s RETURNING from_seq, to_seq",
                (status, json.dumps(body), request_id, station))
    known = cur.fetchone() is not None
    missing = _int(body.get("missing")) or 0
    if status != "ok" or missing > 0:
        # The station cannot give these events back (pruned after confirmation, or the request
        # was refused): only an operator can settle it.
        raise_alert(cur, station, "hub", "replay_unsatisfied",
                    {"request_id": request_id, "status": status, "missing": missing, "known_request": known,
                     "from_seq": _int(body.get("from_seq")), "to_seq": _int(body.get("to_seq")),
                     "oldest_available_seq": _int(body.get("oldest_available_seq"))})


def _config_error(cur: psycopg.Cursor, station: str, body: dict[str, Any]) -> None:
    raise_alert(cur, station, "station", "config_rejected",
                {k: body.get(k) for k in ("kind", "version", "code", "message")})


_HANDLERS = {
    "availability": _availability,
    "status": _status,
    "alerts": _alert,
    "replay/result": _replay_result,
    "config/errors": _config_error,
}
