"""Gaps: ask a station for the events of a hole that outlived the grace period; alert when a
replay does not fill it.

Normally a hole fills by itself: the station resends everything unconfirmed after its ack
timeout, and a message lost with a killed worker comes back that way. The replay request
(``loyalty/v1/stations/{station}/replay``) makes the station resend at once; only stations
that are online are asked (an offline one cannot answer, and its broker session would only
queue duplicates). One open request per station at a time.
"""
from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime

import paho.mqtt.client as mqtt
import psycopg

from hub.alerts import raise_alert
from hub.mqtt import topic

log = logging.getLogger(__name__)


def _iso_s(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def request_replays(conn: psycopg.Connection, client: mqtt.Client, grace_s: float, retry_after_s: float) -> int:
    """Ask for holes that are really lost, not merely behind in a backlog.

    A hole counts as lost when the station has since *created* events ``grace_s`` later than the
    first event after the hole and those arrived (station clock on both sides, so a lagging hub
    or an unsynchronized clock does not matter), or when it has been open ``3 x grace_s``.
    """
    due = conn.execute(
        "SELECT s.station_id, s.epoch, s.contiguous_seq, s.max_seq_seen,"
        " s.gap_since < now() - make_interval(secs => %s) FROM stations s"
        " WHERE s.gap_since < now() - make_interval(secs => %s) AND s.max_seq_seen > s.contiguous_seq"
        " AND COALESCE(s.availability, 'online') = 'online'"
        # Not while the hub may still be reading this station's queued messages (schema_002).
        " AND (s.behind_until IS NULL OR s.behind_until < now())"
        # One open request per station, and after a failed one wait a timeout before asking again.
        " AND NOT EXISTS (SELECT 1 FROM replay_requests r WHERE r.station_id = s.station_id"
        "   AND (r.status IN ('requested', 'ok') OR r.requested_at > now() - make_interval(secs => %s)))",
        (3 * grace_s, grace_s, retry_after_s)).fetchall()
    asked = 0
    for station, epoch, contiguous, max_seen, overdue in due:
        first_present, first_at = conn.execute(
            "SELECT seq, created_at FROM events WHERE station_id = %s AND epoch = %s AND seq > %s ORDER BY seq LIMIT 1",
            (station, epoch, contiguous)).fetchone() or (None, None)
        last_at = conn.execute("SELECT created_at FROM events WHERE station_id = %s AND epoch = %s AND seq = %s",
                               (station, epoch, max_seen)).fetchone()
        try:
            lost = overdue or (first_at is not None and last_at is not None
                               and _iso_s(last_at[0]) - _iso_s(first_at) >= grace_s)
        except ValueError:
            lost = overdue
        if not lost:
            continue
        from_seq, to_seq = contiguous + 1, (first_present or max_seen + 1) - 1
        request_id = f"hub-{uuid.uuid4()}"
        with conn.transaction():
            conn.execute("INSERT INTO replay_requests(request_id, station_id, epoch, from_seq, to_seq)"
                         " VALUES (%s, %s, %s, %s, %s)", (request_id, station, epoch, from_seq, to_seq))
        client.publish(topic(station, "replay"),
                       json.dumps({"from_seq": from_seq, "to_seq": to_seq, "request_id": request_id}), qos=1)
        log.info("estación %s: faltan seq %d..%d; reenvío %s pedido [replay_requested]", station, from_seq, to_seq, request_id)
        asked += 1
    return asked


def expire_replays(conn: psycopg.Connection, timeout_s: float) -> int:
    """A request unanswered, or answered ``ok`` while the hole is still open, after the timeout."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "UPDATE replay_requests r SET answered_at = COALESCE(r.answered_at, now()),"
            " status = CASE WHEN r.answered_at IS NULL THEN 'timed_out' ELSE 'unfilled' END"
            " FROM stations s WHERE s.station_id = r.station_id AND r.status IN ('requested', 'ok')"
            " AND r.requested_at < now() - make_interval(secs => %s)"
            " AND s.epoch = r.epoch AND s.contiguous_seq < r.to_seq"
            # The station may have resent it into a backlog the hub has not read yet: wait for it.
            " AND (s.behind_until IS NULL OR s.behind_until < now() - make_interval(secs => 1))"
            " RETURNING r.request_id, r.station_id, r.from_seq, r.to_seq, r.status",
            (timeout_s,))
        expired = cur.fetchall()
        for request_id, station, from_seq, to_seq, status in expired:
            raise_alert(cur, station, "hub", "replay_unsatisfied",
                        {"request_id": request_id, "status": status, "from_seq": from_seq, "to_seq": to_seq})
        # Requests whose hole filled are closed so the next hole may be asked for.
        cur.execute(
            "UPDATE replay_requests r SET answered_at = COALESCE(r.answered_at, now()), status = 'filled'"
            " FROM stations s WHERE s.station_id = r.station_id AND r.status IN ('requested', 'ok')"
            " AND (s.epoch <> r.epoch OR s.contiguous_seq >= r.to_seq)")
    return len(expired)
