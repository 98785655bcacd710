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

import gc
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import psycopg

from hub import staging
from hub.alerts import raise_alert
from hub.projections import Applied, Event, apply_in_order
from hub.schemas import EventSchemas

log = logging.getLogger(__name__)
PARKED_WINDOW = 5000  # events past the watermark read per pass when a hole was filled
# A station draining a day offline sends day-old events: that is not the hub being a day behind.
# Past this, the hub is under-sized and replay requests and alerts are deserved anyway.
BEHIND_CAP_S = 300.0


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
    directory: dict[tuple[str, str], bool] = field(default_factory=dict)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# A number token of 19 digits or more may not fit in 64 bits, and orjson would turn it into a
# float, stored altered. Such a token starts the document or follows "[", ":" or "," (maybe
# whitespace, a minus): with every digit made 0, those three made "," and whitespace and minus
# signs deleted, it reads ",0000000000000000000" or starts with 19 zeros. Deleting can only
# make more text match (a string's contents, say), never less: that message merely takes the
# slower json path. A regular expression doing the same cost as much as the parse it saved
# (profiled).
_LONG_NUMBER = b"," + b"0" * 19
_DIGITS_AND_SEPARATORS = bytes.maketrans(b"123456789:[", b"000000000,,")


def _may_hold_long_number(raw: bytes) -> bool:
    marked = raw.translate(_DIGITS_AND_SEPARATORS, b" \t\n\r-")
    return _LONG_NUMBER in marked or marked.startswith(_LONG_NUMBER[1:])  # or the whole document is one


def loads(raw: bytes) -> Any:
    """``json.loads(raw)`` with NaN and Infinity refused, in about half the time on our messages.

    orjson parses (profiled: json.loads was most of a burst's parse time); json decides whenever
    orjson could differ: a long integer (above), anything orjson refuses (NaN, Infinity, 1e400,
    a lone surrogate, a byte order mark...), so the result and the error are json's.
    NaN and Infinity are not JSON (RFC 8259): refused, as orjson (payload_text) would write them
    as null."""
    if not _may_hold_long_number(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw, parse_constant=_not_json)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """A group is tens of thousands of fresh dicts, lists and row tuples, none of them in a
    cycle: the collector's passes over them found nothing and cost about a third of the parse
    and a tenth to a quarter of the ingest's Python CPU (profiled). Paused while one group is parsed and
    written, then enabled again; reference counting frees everything as usual meanwhile."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_messages(messages: list[tuple[str, bytes]], schemas: EventSchemas,
                   unreadable: list[tuple[str | None, str, str, str]]) -> dict[str, Parsed]:
    """Topic and bytes -> per station events, parsed by the same stream :func:`ingest` COPYs
    from, without a database; unreadable messages go to ``unreadable``."""
    stream = _Stream(schemas, _Unlocked())
    with _no_cyclic_gc():
        for _ in stream.rows(messages):
            pass
    unreadable.extend(stream.unreadable)
    parsed = {sid: Parsed(sid, {e["id"]: e for e, state in st.rows if state == "stored"}, list(st.refused))
              for sid, st in stream.stations.items()}
    for sid, event, reason, detail, raw in stream.unkeepable:
        parsed[sid].refused.append((event, reason, detail, raw))
    return parsed


class _Unlocked(dict):
    """Stations as :func:`parse_messages` needs them: made on first use, no row locked."""

    def __missing__(self, station_id: str) -> "_Station":
        return self.setdefault(station_id, _Station(station_id, 0, 0, 0))


def _topic_station(topic: str) -> str | None:
    parts = topic.split("/")
    return parts[3] if len(parts) == 5 else None


def _batches(messages: list[tuple[str, bytes]], schemas: EventSchemas,
             unreadable: list[tuple[str | None, str, str, str]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(station, batch) of each readable message, in order; the others go to ``unreadable``."""
    for topic, raw in messages:
        station = _topic_station(topic)
        try:
            batch = loads(raw)
        except ValueError as exc:
            unreadable.append((station, "invalid_json", str(exc)[:200], raw.decode("utf-8", errors="replace")))
            continue
        problem = schemas.batch_problem(batch)
        if problem is None and batch["station_id"] != station:
            problem = "station_id does not match the topic"
        if problem is not None or station is None:
            unreadable.append((station, "invalid_batch", problem or "topic", raw.decode("utf-8", errors="replace")))
            continue
        yield station, batch


def ingest(conn: psycopg.Connection, messages: list[tuple[str, bytes]], schemas: EventSchemas) -> Outcome:
    """Store and apply ``messages`` (topic, payload) in one transaction; return what to ack.

    The statements are per *group*, not per station or event: one lock statement, one COPY
    into staging and one insert from it, one watermark update, a few set-based projection
    statements (hub.staging explains why COPY).
    """
    with _no_cyclic_gc():
        return _ingest(conn, messages, schemas)


def _ingest(conn: psycopg.Connection, messages: list[tuple[str, bytes]], schemas: EventSchemas) -> Outcome:
    outcome = Outcome()
    applied = Applied()
    staging.ensure_tables(conn)
    with conn.transaction(), conn.cursor() as cur:
        received = time.time()
        # Locked before parsing, by the topics' station ids (a readable batch names its topic's
        # station): each message's events then go to PostgreSQL while Python parses the next one,
        # instead of PostgreSQL idling through the whole group's parse (profiled: a sixth of a
        # burst's time). A station whose messages all turn out unreadable still gets its row,
        # as its availability message gives it anyway (hub.station_meta).
        locked = _lock_stations(cur, sorted({s for s in map(_topic_station, (t for t, _ in messages))
                                             if s is not None and schemas.station_id_ok(s)}))
        stream = _Stream(schemas, locked)
        inserted = staging.insert_events(cur, stream.rows(messages))
        for station, reason, detail, raw in stream.unreadable:
            _quarantine(cur, station, None, reason, detail, raw)
            outcome.quarantined += 1
        for station, event, reason, detail, raw in stream.unkeepable:  # no id or seq to keep it by: quarantined
            _quarantine(cur, station, event, reason, detail, raw)      # whole, cannot be acknowledged
            outcome.quarantined += 1
        if stream.stations:
            _ingest_stations(cur, stream.stations, inserted, outcome, applied)
        with conn.pipeline():  # the last statements in one round trip
            if stream.stations:
                _watermarks(cur, stream.stations, received)
            if applied.directory:
                changed = sorted(applied.directory.items())
                cur.execute("INSERT INTO directory_changes(account_id, station_id, broadcast)"
                            " SELECT * FROM unnest(%b::text[], %b::text[], %b::bool[])",
                            ([a for (a, _), _ in changed], [st for (_, st), _ in changed], [b for _, b in changed]))
    outcome.directory = applied.directory
    return outcome


@dataclass
class _Station:
    station_id: str
    epoch: int
    contiguous: int
    max_seen: int
    rows: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (event, stored | quarantined)
    refused: list[tuple[dict[str, Any], str, str, str]] = field(default_factory=list)  # storable refusals


def _quarantine(cur: psycopg.Cursor, station: str | None, event: dict[str, Any] | None, reason: str,
                detail: str, raw: str) -> None:
    event_id, seq, etype = EventSchemas.identity(event)
    cur.execute("INSERT INTO quarantine(station_id, event_id, seq, type, reason, detail, raw)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)", (station, event_id, seq, etype, reason, detail, raw))
    # The alert names the event, never its content (the detail may quote personal data).
    raise_alert(cur, station, "hub", "event_quarantined",
                {"reason": reason, "event_id": event_id, "seq": seq, "type": etype})


def _lock_stations(cur: psycopg.Cursor, ids: list[str]) -> dict[str, _Station]:
    if not ids:
        return {}
    with cur.connection.pipeline():  # both statements in one round trip
        # Sorted, in one statement: two workers locking overlapping groups never deadlock.
        cur.execute("INSERT INTO stations(station_id) SELECT unnest(%b::text[]) ON CONFLICT DO NOTHING", (ids,))
        # NO KEY UPDATE: rows that merely reference a station (a replay request) need not wait for us.
        cur.execute("SELECT station_id, epoch, contiguous_seq, max_seq_seen FROM stations WHERE station_id = ANY(%b)"
                    " ORDER BY station_id FOR NO KEY UPDATE", (ids,))
        return {r[0]: _Station(r[0], r[1], r[2], r[3]) for r in cur.fetchall()}


def _insert(cur: psycopg.Cursor, rows: list[tuple[str, int, dict[str, Any], str]]) -> set[str]:
    """Insert-if-absent (station, epoch, event, state); returns the ids inserted now."""
    return staging.insert_events(cur, rows) if rows else set()


def _storable(event: Any) -> dict[str, Any] | None:
    """A refused event with a readable id and seq is kept in ``events`` (as quarantined)."""
    event_id, seq, _ = EventSchemas.identity(event)
    if event_id is None or seq is None or not isinstance(event, dict):
        return None
    version = event.get("schema_version")
    return {"id": event_id, "seq": seq, "type": str(event.get("type"))[:64],
            "schema_version": version if isinstance(version, int) and not isinstance(version, bool) and
            abs(version) < 2**31 else 0,
            "created_at": str(event.get("created_at"))[:64], "clock_synced": event.get("clock_synced") is True,
            "payload": event.get("payload") if isinstance(event.get("payload"), dict) else {}}


def _lag_s(event: dict[str, Any] | None, received: float) -> float | None:
    """Seconds between the station creating its newest event of the group and the hub reading it,
    when the station's clock can be trusted (hub.db.schema_002 says what it is for)."""
    if event is None or event.get("clock_synced") is not True:
        return None
    try:
        created = datetime.fromisoformat(str(event["created_at"]).replace("Z", "+00:00"))
    except ValueError:
        return None
    if created.tzinfo is None:
        return None
    return min(BEHIND_CAP_S, max(0.0, received - created.timestamp()))


class _Stream:
    """The group's messages parsed one by one into rows for ``events``, as the COPY asks for them.

    The generator runs inside the COPY: it must not use the connection. What cannot be stored
    (unreadable messages, refusals without an id or seq) is only collected, for afterwards."""

    def __init__(self, schemas: EventSchemas, locked: dict[str, _Station]) -> None:
        self.schemas = schemas
        self.locked = locked
        self.stations: dict[str, _Station] = {}  # those with a readable batch, in order of their first
        self.unreadable: list[tuple[str | None, str, str, str]] = []
        self.unkeepable: list[tuple[str, dict[str, Any], str, str, str]] = []

    def rows(self, messages: list[tuple[str, bytes]]) -> Iterator[tuple[str, int, dict[str, Any], str]]:
        check, refusals = self.schemas.check_event, []
        seen: dict[str, set[str]] = {}
        for station, batch in _batches(messages, self.schemas, self.unreadable):
            st = self.stations.get(station)
            if st is None:
                st = self.stations[station] = self.locked[station]
                seen[station] = set()
            ids = seen[station]
            for event in batch["events"]:
                refusal = check(event)
                if refusal is None:
                    if event["id"] not in ids:  # a resend within the group: the first one counts
                        ids.add(event["id"])
                        st.rows.append((event, "stored"))
                        yield station, st.epoch, event, "stored"
                else:
                    refusals.append((st, event, refusal, json.dumps(event, ensure_ascii=False)))
        # Refusals after every valid event, as when the group was parsed whole (a refused and a
        # valid event with one id: the valid one is stored).
        for st, event, refusal, raw in refusals:
            kept = _storable(event)
            if kept is None:
                self.unkeepable.append((st.station_id, event, refusal.reason, refusal.detail, raw))
            else:
                st.rows.append((kept, "quarantined"))
                st.refused.append((event, refusal.reason, refusal.detail, raw))
                yield st.station_id, st.epoch, kept, "quarantined"


def _ingest_stations(cur: psycopg.Cursor, states: dict[str, _Station], inserted: set[str], outcome: Outcome,
                     applied: Applied) -> None:
    missing = [e["id"] for st in states.values() for e, _ in st.rows if e["id"] not in inserted]
    if missing:
        cur.execute("SELECT event_id FROM events WHERE event_id = ANY(%b)", (missing,))
        known = {r[0] for r in cur.fetchall()}
        outcome.duplicates += len(known)
        for st in states.values():
            reused = [(e, s) for e, s in st.rows if e["id"] not in inserted and e["id"] not in known]
            if reused:
                inserted |= _new_epoch(cur, st, reused)
    ready: list[Event] = []
    for st in states.values():
        for event, reason, detail, raw in st.refused:
            if event["id"] in inserted:
                _quarantine(cur, st.station_id, event, reason, detail, raw)
                outcome.quarantined += 1
        outcome.acks[st.station_id].extend(e["id"] for e, _ in st.rows)
        new = sorted(((e["seq"], e, s) for e, s in st.rows if e["id"] in inserted), key=lambda t: t[0])
        outcome.stored += len(new)
        st.max_seen = max([st.max_seen, *(seq for seq, _, _ in new)])
        st.contiguous = _advance(cur, st, new, ready)
    apply_in_order(cur, ready, applied)
    outcome.applied += len(ready)


def _watermarks(cur: psycopg.Cursor, states: dict[str, _Station], received: float) -> None:
    """Each station's new ``contiguous_seq``, ``max_seq_seen``, clock and lag, in one statement."""
    ordered = sorted(states.values(), key=lambda st: st.station_id)
    newest = [max(st.rows, key=lambda r: r[0]["seq"])[0] if st.rows else None for st in ordered]
    cur.execute(
        "UPDATE stations s SET contiguous_seq = u.c, max_seq_seen = u.m, last_event_at = now(),"
        " gap_since = CASE WHEN u.m > u.c THEN COALESCE(s.gap_since, now()) END,"
        " clock_synced = COALESCE(u.synced, s.clock_synced),"
        # Another worker may hold older messages of this station: the later promise wins.
        " behind_until = CASE WHEN u.lag > 0 THEN GREATEST(s.behind_until, now() + make_interval(secs => u.lag))"
        "  ELSE s.behind_until END"
        " FROM unnest(%b::text[], %b::bigint[], %b::bigint[], %b::bool[], %b::float8[]) AS u(id, c, m, synced, lag)"
        " WHERE s.station_id = u.id",
        ([st.station_id for st in ordered], [st.contiguous for st in ordered], [st.max_seen for st in ordered],
         # clock_synced of each station's newest event in this group: is its clock trustworthy now?
         [e["clock_synced"] if e else None for e in newest], [_lag_s(e, received) for e in newest]))


def _new_epoch(cur: psycopg.Cursor, st: _Station, reused: list[tuple[dict[str, Any], str]]) -> set[str]:
    """A known seq with an unknown id: the station was reinstalled with an empty database and
    started again at 1. Start a new epoch rather than drop its events."""
    st.epoch, st.contiguous, st.max_seen = st.epoch + 1, 0, 0
    cur.execute("UPDATE stations SET epoch = %s, contiguous_seq = 0, max_seq_seen = 0, gap_since = NULL"
                " WHERE station_id = %s", (st.epoch, st.station_id))
    raise_alert(cur, st.station_id, "hub", "station_new_epoch", {"epoch": st.epoch})
    return _insert(cur, [(st.station_id, st.epoch, e, s) for e, s in reused])


def _advance(cur: psycopg.Cursor, st: _Station, new: list[tuple[int, dict[str, Any], str]], ready: list[Event]) -> int:
    """Queue events contiguous_seq + 1, + 2, ... that are present; return the new watermark."""
    contiguous = st.contiguous

    def take(seq: int, event: dict[str, Any], state: str) -> None:
        if state != "quarantined":
            ready.append(Event(event["id"], st.station_id, seq, event["type"], event["created_at"], event["payload"]))

    # Fast path: the events just received usually continue the sequence; no need to read them back.
    for seq, event, state in new:
        if seq != contiguous + 1:
            break
        take(seq, event, state)
        contiguous = seq
    # Parked events can only follow if this group moved the watermark (it filled the first hole):
    # a station with an open gap costs no read until the missing event comes.
    while contiguous > st.contiguous and st.max_seen > contiguous:
        cur.execute("SELECT seq, event_id, type, created_at, payload, state FROM events WHERE station_id = %s"
                    " AND epoch = %s AND seq > %s AND seq <= %s ORDER BY seq",
                    (st.station_id, st.epoch, contiguous, contiguous + PARKED_WINDOW))
        progressed = False
        for seq, event_id, etype, created_at, payload, state in cur.fetchall():
            if seq != contiguous + 1:
                break
            take(seq, {"id": event_id, "type": etype, "created_at": created_at, "payload": payload}, state)
            contiguous, progressed = seq, True
        if not progressed:
            break
    return contiguous
