"""Ingest: a group of event messages in one transaction, then the ids to acknowledge.

Per station (locked with ``SELECT ... FOR UPDATE``, stations in sorted order so two workers
never deadlock): every event is stored keyed by its id (a resend is a no-op), then the station's
``contiguous_seq`` advances over every event present, applying each one's projections in seq
order. Events past a hole stay stored ("parked") until the hole is filled; the gap is timed
(``gap_since``) for the replay check. An event its schema refuses is quarantined: stored as
``quarantined`` (it still counts for the sequence, so it blocks nobody), copied to
``quarantine`` with the reason, and alerted. Everything stored is acknowledged, after commit,
by the caller.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import psycopg

from hub.alerts import raise_alert
from hub.projections import Applied, Event, apply_in_order
from hub.schemas import EventSchemas

log = logging.getLogger(__name__)
PARKED_WINDOW = 5000  # events past the watermark read per pass when a hole was filled


@dataclass
class Parsed:
    """One station's valid and refused events from the messages of a group."""

    station_id: str
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> event (valid)
    refused: list[tuple[dict[str, Any] | None, str, str, str]] = field(default_factory=list)  # event, reason, detail, raw


@dataclass
class Outcome:
    acks: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    applied: int = 0
    directory: dict[str, bool] = field(default_factory=dict)


def parse_messages(messages: list[tuple[str, bytes]], schemas: EventSchemas,
                   unreadable: list[tuple[str | None, str, str, str]]) -> dict[str, Parsed]:
    """Topic and bytes -> per station events; unreadable messages go to ``unreadable``."""
    by_station: dict[str, Parsed] = {}
    for topic, raw in messages:
        parts = topic.split("/")
        station = parts[3] if len(parts) == 5 else None
        text = raw.decode("utf-8", errors="replace")
        try:
            batch = json.loads(raw)
        except ValueError as exc:
            unreadable.append((station, "invalid_json", str(exc)[:200], text))
            continue
        problem = schemas.batch_problem(batch)
        if problem is None and batch["station_id"] != station:
            problem = "station_id does not match the topic"
        if problem is not None or station is None:
            unreadable.append((station, "invalid_batch", problem or "topic", text))
            continue
        parsed = by_station.setdefault(station, Parsed(station))
        for event in batch["events"]:
            refusal = schemas.check_event(event)
            if refusal is None:
                parsed.events.setdefault(event["id"], event)
            else:
                parsed.refused.append((event, refusal.reason, refusal.detail, json.dumps(event, ensure_ascii=False)))
    return by_station


def ingest(conn: psycopg.Connection, messages: list[tuple[str, bytes]], schemas: EventSchemas) -> Outcome:
    """Store and apply ``messages`` (topic, payload) in one transaction; return what to ack."""
    unreadable: list[tuple[str | None, str, str, str]] = []
    by_station = parse_messages(messages, schemas, unreadable)
    outcome = Outcome()
    applied = Applied()
    # Pipeline mode: the projections' statements go out without waiting for each answer (only the
    # station lock, the insert and the parked-events read wait); one round trip per station, not per row.
    with conn.pipeline(), conn.transaction(), conn.cursor() as cur:
        for station, reason, detail, raw in unreadable:
            _quarantine(cur, station, None, reason, detail, raw)
            outcome.quarantined += 1
        for station in sorted(by_station):
            _ingest_station(cur, by_station[station], outcome, applied)
        if applied.directory:
            cur.executemany("INSERT INTO directory_changes(account_id, broadcast) VALUES (%s, %s)",
                            sorted(applied.directory.items()))
    outcome.directory = applied.directory
    return outcome


def _quarantine(cur: psycopg.Cursor, station: str | None, event: dict[str, Any] | None, reason: str,
                detail: str, raw: str) -> None:
    event_id, seq, etype = EventSchemas.identity(event)
    cur.execute("INSERT INTO quarantine(station_id, event_id, seq, type, reason, detail, raw)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)", (station, event_id, seq, etype, reason, detail, raw))
    # The alert names the event, never its content (the detail may quote personal data).
    raise_alert(cur, station, "hub", "event_quarantined",
                {"reason": reason, "event_id": event_id, "seq": seq, "type": etype})


def _lock_station(cur: psycopg.Cursor, station: str) -> tuple[int, int, int]:
    cur.execute("INSERT INTO stations(station_id) VALUES (%s) ON CONFLICT DO NOTHING", (station,))
    cur.execute("SELECT epoch, contiguous_seq, max_seq_seen FROM stations WHERE station_id = %s FOR UPDATE",
                (station,))
    row = cur.fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def _insert(cur: psycopg.Cursor, station: str, epoch: int, rows: list[tuple[dict[str, Any], str]]) -> set[str]:
    """Insert-if-absent; returns the ids inserted now."""
    if not rows:
        return set()
    cur.execute(
        "INSERT INTO events(event_id, station_id, epoch, seq, type, schema_version, created_at, clock_synced,"
        " payload, state) SELECT u.id, %s, %s, u.seq, u.type, u.v, u.at, u.synced, u.payload::jsonb, u.state"
        " FROM unnest(%b::text[], %b::bigint[], %b::text[], %b::int[], %b::text[], %b::bool[], %b::text[], %b::text[])"
        " AS u(id, seq, type, v, at, synced, payload, state) ON CONFLICT DO NOTHING RETURNING event_id",
        (station, epoch, [e["id"] for e, _ in rows], [e["seq"] for e, _ in rows], [e["type"] for e, _ in rows],
         [e["schema_version"] for e, _ in rows], [e["created_at"] for e, _ in rows],
         [e["clock_synced"] for e, _ in rows], [json.dumps(e["payload"], ensure_ascii=False) for e, _ in rows],
         [state for _, state in rows]))
    return {r[0] for r in cur.fetchall()}


def _ingest_station(cur: psycopg.Cursor, parsed: Parsed, outcome: Outcome, applied: Applied) -> None:
    station = parsed.station_id
    epoch, contiguous, max_seen = _lock_station(cur, station)
    rows: list[tuple[dict[str, Any], str]] = [(e, "stored") for e in parsed.events.values()]
    storable_refused = []
    for event, reason, detail, raw in parsed.refused:
        event_id, seq, _ = EventSchemas.identity(event)
        if event_id is not None and seq is not None and isinstance(event, dict):
            storable_refused.append((event, reason, detail, raw))
            rows.append(({"id": event_id, "seq": seq, "type": str(event.get("type"))[:64],
                          "schema_version": event.get("schema_version") if isinstance(event.get("schema_version"), int) else 0,
                          "created_at": str(event.get("created_at"))[:64], "clock_synced": event.get("clock_synced") is True,
                          "payload": event.get("payload") if isinstance(event.get("payload"), dict) else {}},
                         "quarantined"))
        else:  # no id or seq to keep it by: quarantined whole, cannot be acknowledged
            _quarantine(cur, station, event, reason, detail, raw)
            outcome.quarantined += 1
    inserted = _insert(cur, station, epoch, rows)
    missing = [(e, s) for e, s in rows if e["id"] not in inserted]
    if missing:
        cur.execute("SELECT event_id FROM events WHERE event_id = ANY(%s)", ([e["id"] for e, _ in missing],))
        known = {r[0] for r in cur.fetchall()}
        outcome.duplicates += len(known)
        reused = [(e, s) for e, s in missing if e["id"] not in known]
        if reused:
            # A known seq with an unknown id: the station was reinstalled with an empty database
            # and started again at 1. Start a new epoch rather than drop its events.
            epoch, contiguous, max_seen = epoch + 1, 0, 0
            cur.execute("UPDATE stations SET epoch = %s, contiguous_seq = 0, max_seq_seen = 0, gap_since = NULL"
                        " WHERE station_id = %s", (epoch, station))
            raise_alert(cur, station, "hub", "station_new_epoch", {"epoch": epoch})
            inserted |= _insert(cur, station, epoch, reused)
    for event, reason, detail, raw in storable_refused:
        if event["id"] in inserted:
            _quarantine(cur, station, event, reason, detail, raw)
            outcome.quarantined += 1
    outcome.stored += len(inserted)
    outcome.acks[station].extend(e["id"] for e, _ in rows)
    new = sorted(((e["seq"], e, s) for e, s in rows if e["id"] in inserted), key=lambda t: t[0])
    max_seen = max([max_seen, *(seq for seq, _, _ in new)])
    contiguous = _advance(cur, station, epoch, contiguous, max_seen, new, outcome, applied)
    cur.execute(
        "UPDATE stations SET contiguous_seq = %s, max_seq_seen = %s, last_event_at = now(),"
        " gap_since = CASE WHEN %s > %s THEN COALESCE(gap_since, now()) END WHERE station_id = %s",
        (contiguous, max_seen, max_seen, contiguous, station))


def _advance(cur: psycopg.Cursor, station: str, epoch: int, contiguous: int, max_seen: int,
             new: list[tuple[int, dict[str, Any], str]], outcome: Outcome, applied: Applied) -> int:
    """Apply events contiguous_seq + 1, + 2, ... that are present; return the new watermark."""
    ready: list[Event] = []

    def take(seq: int, event: dict[str, Any], state: str) -> None:
        if state != "quarantined":
            ready.append(Event(event["id"], station, seq, event["type"], event["created_at"], event["payload"]))

    # Fast path: the events just received usually continue the sequence; no need to read them back.
    for seq, event, state in new:
        if seq != contiguous + 1:
            break
        take(seq, event, state)
        contiguous = seq
    while max_seen > contiguous:
        cur.execute("SELECT seq, event_id, type, created_at, payload, state FROM events WHERE station_id = %s"
                    " AND epoch = %s AND seq > %s AND seq <= %s ORDER BY seq",
                    (station, epoch, contiguous, contiguous + PARKED_WINDOW))
        progressed = False
        for seq, event_id, etype, created_at, payload, state in cur.fetchall():
            if seq != contiguous + 1:
                break
            take(seq, {"id": event_id, "type": etype, "created_at": created_at, "payload": payload}, state)
            contiguous, progressed = seq, True
        if not progressed:
            break
    apply_in_order(cur, ready, applied)
    outcome.applied += len(ready)
    return contiguous
