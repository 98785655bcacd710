"""Transactional outbox: events are written in the same transaction as the change they describe.

The publisher (``agent.queue.publisher``) reads pending rows and sends them; a row is only
deleted after head office confirmed it and the retention period has passed. ``append_event``
refuses new work when the disk budget is exhausted (HTTP 507) rather than dropping anything.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

from agent.clock import CLOCK, now_iso
from agent.errors import AgentError
from agent.ids import new_id


class OutboxFull(AgentError):
    def __init__(self, reason: str) -> None:
        super().__init__(
            "outbox_full",
            "La cola de sincronización está llena: no se pueden registrar más operaciones hasta "
            "que la estación sincronice con la oficina central. Avise a soporte técnico.",
            "The sync queue is full: no more operations can be recorded until the station syncs "
            "with head office. Call technical support.",
            status=507,
            extra={"reason": reason},
        )


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


def append_event(
    conn: sqlite3.Connection,
    type: str,
    payload: dict[str, Any],
    schema_version: int = 1,
) -> str:
    """Queue an event inside the caller's write transaction and return its id.

    Must be called on the writer connection within ``Database.write`` so that the event and
    the change commit together (or not at all).
    """
    body = _json(payload)
    size = len(body.encode())
    totals = conn.execute(
        "SELECT pending_bytes, max_bytes, max_age_s FROM outbox_totals WHERE one = 1"
    ).fetchone()
    if totals["max_bytes"] is not None and totals["pending_bytes"] + size > totals["max_bytes"]:
        _refuse(conn, "bytes")
    if totals["max_age_s"] is not None:
        oldest = conn.execute(
            "SELECT created_at FROM outbox WHERE state != 'confirmed' ORDER BY seq LIMIT 1"
        ).fetchone()
        if oldest is not None:
            age = datetime.now(timezone.utc) - datetime.fromisoformat(oldest[0].replace("Z", "+00:00"))
            if age > timedelta(seconds=totals["max_age_s"]):
                _refuse(conn, "age")
    event_id = new_id()
    conn.execute(
        "INSERT INTO outbox(id, type, schema_version, payload, created_at, clock_synced, size)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (event_id, type, schema_version, body, now_iso(), int(CLOCK.synchronized()), size),
    )
    return event_id


def _refuse(conn: sqlite3.Connection, reason: str) -> None:
    # The refusal counter is recorded outside the caller's (rolled back) transaction by the
    # status reader noticing the error; here we only raise. See OutboxAlarm in the publisher.
    raise OutboxFull(reason)


def configure_budget(conn: sqlite3.Connection, max_bytes: int | None, max_age_s: int | None) -> None:
    conn.execute(
        "UPDATE outbox_totals SET max_bytes = ?, max_age_s = ? WHERE one = 1", (max_bytes, max_age_s)
    )


def record_refusal(conn: sqlite3.Connection) -> None:
    conn.execute(
        "UPDATE outbox_totals SET refused_count = refused_count + 1, last_refused_at = ? WHERE one = 1",
        (now_iso(),),
    )
