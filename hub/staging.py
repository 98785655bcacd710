"""Staging tables: a group's events go to PostgreSQL in one COPY, then set-based statements.

Binding a Python list as an array parameter costs psycopg a Python-level call per element
(profiled: a third of the ingest time for 200-event batches); ``COPY ... FROM STDIN`` rows are
formatted by psycopg's C code. So a group's events are COPYed: straight into ``events`` when
none of them is a resend, else into a temporary table that ``INSERT ... SELECT ... ON
CONFLICT`` reads (``insert_events``).

The tables are per connection (``TEMP``) and emptied at every commit (``ON COMMIT DELETE ROWS``):
nothing in them outlives the transaction that fills them.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
import psycopg

_CREATE = (
    "CREATE TEMP TABLE IF NOT EXISTS stage_events (event_id text, station_id text, epoch integer, seq bigint,"
    " type text, schema_version integer, created_at text, clock_synced boolean, payload jsonb, state text)"
    " ON COMMIT DELETE ROWS",
    # ord: position in the group's apply order; runs of points.earned are ranges of it.
    "CREATE TEMP TABLE IF NOT EXISTS stage_ready (ord integer, event_id text, station_id text)"
    " ON COMMIT DELETE ROWS",
)
_EVENT_COLUMNS = "event_id, station_id, epoch, seq, type, schema_version, created_at, clock_synced, payload, state"


def ensure_tables(conn: psycopg.Connection) -> None:
    """Create this connection's staging tables once (a reconnect gets a new, empty session)."""
    if getattr(conn, "_hub_staging", False):
        return
    with conn.cursor() as cur:
        for statement in _CREATE:
            cur.execute(statement)
    conn._hub_staging = True  # type: ignore[attr-defined]


def payload_text(payload: dict[str, Any]) -> str:
    # orjson: a tenth of json.dumps's time per payload (profiled: json.dumps was a fifth of a
    # burst's Python time); compact UTF-8 like json.dumps(ensure_ascii=False, separators=(",", ":")).
    try:
        return orjson.dumps(payload).decode()
    except TypeError:  # an integer past 64 bits: json writes it exactly and PostgreSQL judges it
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def insert_events(cur: psycopg.Cursor, rows: Iterable[tuple[str, int, dict[str, Any], str]]) -> set[str]:
    """Insert (station, epoch, event, state) rows absent from ``events``; return the ids inserted
    now (a resend's are not). ``rows`` may be a generator still parsing: it is read once, during
    the first COPY, so PostgreSQL works on the first rows while the next are made.

    Usually none of them is stored yet: one COPY straight into ``events`` in a savepoint (what
    the benchmark's floor does). A resend makes it fail on the key: rolled back, the group goes
    through staging (``INSERT ... SELECT ... ON CONFLICT DO NOTHING``), and so do the next
    groups of this connection until one has no resend (a backlog of resends after an outage
    would otherwise pay the failed COPY on every group)."""
    conn = cur.connection
    written: list[tuple[str, int, dict[str, Any], str]] = []
    rows = iter(rows)

    def remembered() -> Iterator[tuple[str, int, dict[str, Any], str]]:
        for row in rows:
            written.append(row)
            yield row

    if not getattr(conn, "_hub_resends", False):
        try:
            with conn.transaction():
                _copy(cur, "events", remembered())
            return {event["id"] for _, _, event, _ in written}
        except psycopg.errors.UniqueViolation:
            conn._hub_resends = True  # type: ignore[attr-defined]
        written.extend(rows)  # whatever the failed COPY had not read yet
        _copy(cur, "stage_events", written)
    else:
        _copy(cur, "stage_events", remembered())
    cur.execute(f"INSERT INTO events ({_EVENT_COLUMNS}) SELECT {_EVENT_COLUMNS} FROM stage_events"
                " ON CONFLICT DO NOTHING RETURNING event_id")
    inserted = {r[0] for r in cur.fetchall()}
    cur.execute("DELETE FROM stage_events")  # a second call in this transaction (a new epoch) starts empty
    conn._hub_resends = len(inserted) < len(written)  # type: ignore[attr-defined]
    return inserted


# Rows formatted per chunk into one text (below): the COPY still streams, a chunk at a time, so
# PostgreSQL stores the first messages' events while the next are parsed (hub.ingest).
_CHUNK_ROWS = 256


def _copy(cur: psycopg.Cursor, table: str, rows: Iterable[tuple[str, int, dict[str, Any], str]]) -> None:
    with cur.copy(f"COPY {table} ({_EVENT_COLUMNS}) FROM STDIN") as copy:
        chunk: list[tuple[str, int, dict[str, Any], str]] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == _CHUNK_ROWS:
                _write_chunk(copy, chunk)
                chunk = []
        if chunk:
            _write_chunk(copy, chunk)


def _write_chunk(copy: psycopg.Copy, chunk: list[tuple[str, int, dict[str, Any], str]]) -> None:
    """The chunk's rows as COPY text made by one f-string each, instead of ``write_row``'s
    per-row call and per-value dumping (profiled, ``bench hub_ingest`` burst: 7 us a row, a
    sixth of the hub process's CPU). Backslashes are doubled over the whole text (JSON escapes
    in payloads are common); a tab, newline or carriage return is never in a payload's JSON
    text and not expected in the envelope's validated values, so the text is checked rather
    than escaped: one newline and nine tabs per row, no carriage return, else the chunk goes
    through ``write_row``, which escapes everything."""
    text = "".join([f"{event['id']}\t{station}\t{epoch}\t{event['seq']}\t{event['type']}\t{event['schema_version']}"
                    f"\t{event['created_at']}\t{'t' if event['clock_synced'] else 'f'}"
                    f"\t{payload_text(event['payload'])}\t{state}\n" for station, epoch, event, state in chunk])
    text = text.replace("\\", "\\\\")
    if text.count("\n") == len(chunk) and text.count("\t") == 9 * len(chunk) and "\r" not in text:
        copy.write(text)
        return
    for station, epoch, event, state in chunk:
        copy.write_row((event["id"], station, epoch, event["seq"], event["type"], event["schema_version"],
                        event["created_at"], event["clock_synced"], payload_text(event["payload"]), state))


def stage_ready(cur: psycopg.Cursor, ready: Iterable[tuple[int, str, str]]) -> None:
    """(ord, event id, station) of the events to apply in this group, in apply order."""
    with cur.copy("COPY stage_ready (ord, event_id, station_id) FROM STDIN") as copy:
        for row in ready:
            copy.write_row(row)
