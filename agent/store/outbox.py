"""Transactional outbox: events are written in the same transaction as the change they describe.

The publisher (``agent.queue.publisher``) reads pending rows and sends them; a row is only
deleted after head office confirmed it and the retention period has passed. ``append_event``
refuses new work when the disk budget is exhausted (HTTP 507) rather than dropping anything.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

from agent.clock import CLOCK, now_iso
from agent.errors import AgentError
from agent.ids import new_id
from agent.store.guard import StorageFull


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
        self.reason = reason


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)


def append_event(
    conn: sqlite3.Connection,
    type: str,
    payload: dict[str, Any],
    schema_version: int = 1,
    *,
    security: bool = False,
) -> str:
    """Queue an event inside the caller's write transaction and return its id.

    Must be called on the writer connection within ``Database.write`` so that the event and
    the change commit together (or not at all).

    The disk budget refuses new *business* work (507). ``security=True`` events (a PIN lockout,
    a PIN bundle, a blocked card, a consent change, deleted biometric data) are queued past it:
    refusing them would roll back the change they describe, and a full queue must never undo a
    lockout, keep a stolen card or revoked PINs valid, or ignore a withdrawn consent.
    """
    body = _json(payload)
    size = len(body.encode())
    if not security:
        _check_budget(conn, size)
    event_id = new_id()
    conn.execute(
        "INSERT INTO outbox(id, type, schema_version, payload, created_at, clock_synced, size)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (event_id, type, schema_version, body, now_iso(), int(CLOCK.synchronized()), size),
    )
    return event_id


def _check_budget(conn: sqlite3.Connection, size: int) -> None:
    totals = conn.execute(
        "SELECT pending_bytes, max_bytes, max_age_s, min_free_bytes FROM outbox_totals WHERE one = 1"
    ).fetchone()
    if totals["min_free_bytes"] is not None:
        # Real bytes on the real disk: the event's row, the change it describes, their indexes
        # and the WAL take several times the payload; the reserve keeps room for what must pass.
        folder = os.path.dirname(conn.execute("PRAGMA database_list").fetchone()[2]) or "."
        if shutil.disk_usage(folder).free < totals["min_free_bytes"] + size:
            raise StorageFull()
    if totals["max_bytes"] is not None and totals["pending_bytes"] + size > totals["max_bytes"]:
        raise OutboxFull("bytes")
    if totals["max_age_s"] is not None:
        oldest = conn.execute(
            "SELECT created_at FROM outbox WHERE state != 'confirmed' AND confirmed_at IS NULL"
            " AND set_aside_at IS NULL ORDER BY seq LIMIT 1"
        ).fetchone()
        if oldest is not None:
            age = datetime.now(timezone.utc) - datetime.fromisoformat(oldest[0].replace("Z", "+00:00"))
            if age > timedelta(seconds=totals["max_age_s"]):
                raise OutboxFull("age")


def configure_budget(conn: sqlite3.Connection, max_bytes: int | None, max_age_s: int | None,
                     min_free_bytes: int | None = None) -> None:
    conn.execute(
        "UPDATE outbox_totals SET max_bytes = ?, max_age_s = ?, min_free_bytes = ? WHERE one = 1",
        (max_bytes, max_age_s, min_free_bytes),
    )


def budget_of(conn: sqlite3.Connection) -> tuple[int | None, int | None, int | None]:
    row = conn.execute("SELECT max_bytes, max_age_s, min_free_bytes FROM outbox_totals WHERE one = 1").fetchone()
    return row["max_bytes"], row["max_age_s"], row["min_free_bytes"]


def record_refusal(conn: sqlite3.Connection) -> None:
    """Count a refusal; called in its own transaction (the refused one was rolled back) by
    ``SyncService.on_outbox_full``, the hook ``Database.write`` calls for every refusal."""
    conn.execute(
        "UPDATE outbox_totals SET refused_count = refused_count + 1, last_refused_at = ? WHERE one = 1",
        (now_iso(),),
    )


# ---- publisher side ------------------------------------------------------------------------

def unconfirmed_after(conn: sqlite3.Connection, after_seq: int, limit: int) -> list[sqlite3.Row]:
    """Unconfirmed events with ``seq > after_seq`` in order (the publisher's forward cursor)."""
    return conn.execute(
        "SELECT seq, id, type, schema_version, payload, created_at, clock_synced, size, state FROM outbox"
        " WHERE state != 'confirmed' AND seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)).fetchall()


def events_by_seq(conn: sqlite3.Connection, seqs: list[int]) -> list[sqlite3.Row]:
    rows: list[sqlite3.Row] = []
    for start in range(0, len(seqs), 500):
        chunk = seqs[start:start + 500]
        rows += conn.execute(
            "SELECT seq, id, type, schema_version, payload, created_at, clock_synced, size FROM outbox"
            f" WHERE state != 'confirmed' AND seq IN ({','.join('?' * len(chunk))}) ORDER BY seq", chunk).fetchall()
    return rows


def mark_delivered(conn: sqlite3.Connection, seqs: list[int], at: str) -> None:
    for start in range(0, len(seqs), 500):
        chunk = seqs[start:start + 500]
        conn.execute(f"UPDATE outbox SET state='delivered', delivered_at=?, attempts=attempts+1"
                     f" WHERE state='pending' AND seq IN ({','.join('?' * len(chunk))})", [at, *chunk])


def mark_confirmed_seqs(conn: sqlite3.Connection, seqs: list[int], at: str) -> int:
    """Confirm by sequence number (the primary key): the path for acks of events sent in this run."""
    return _confirm(conn, "seq", seqs, at)


def mark_confirmed(conn: sqlite3.Connection, event_ids: list[str], at: str) -> int:
    """Confirm by event id: acks of events sent by an earlier run of the agent."""
    return _confirm(conn, "id", event_ids, at)


def _confirm(conn: sqlite3.Connection, column: str, keys: list[Any], at: str) -> int:
    changed = 0
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        changed += conn.execute(f"UPDATE outbox SET state='confirmed', confirmed_at=?"
                                f" WHERE state != 'confirmed' AND {column} IN ({','.join('?' * len(chunk))})",
                                [at, *chunk]).rowcount
    if changed:
        conn.execute("UPDATE sync_state SET last_success_at=? WHERE one=1", (at,))
    return changed


def record_progress(conn: sqlite3.Connection, delivered: list[int], confirmed_seqs: list[int],
                    confirmed_ids: list[str], at: str) -> int:
    """The publisher's group commit: PUBACKed rows become delivered, acked rows confirmed (by seq
    for rows sent in this run, by id for acks of an earlier run's). Returns how many were confirmed."""
    confirmed = set(confirmed_seqs)
    # A row acked in the same flush skips the "delivered" step: one UPDATE per row, not two.
    only_delivered = [seq for seq in delivered if seq not in confirmed]
    if only_delivered:
        mark_delivered(conn, only_delivered, at)
    done = mark_confirmed_seqs(conn, confirmed_seqs, at) if confirmed_seqs else 0
    return done + (mark_confirmed(conn, confirmed_ids, at) if confirmed_ids else 0)


def set_aside(conn: sqlite3.Connection, seq: int, at: str) -> bool:
    """Record that the publisher set ``seq`` aside (too large for the broker); False if it already was."""
    return conn.execute("UPDATE outbox SET set_aside_at = ? WHERE seq = ? AND set_aside_at IS NULL"
                        " AND state != 'confirmed'", (at, seq)).rowcount == 1


def set_aside_seqs(conn: sqlite3.Connection) -> list[int]:
    """Unconfirmed events set aside by an earlier run (never sent again, never alerted again)."""
    return [r[0] for r in conn.execute(
        "SELECT seq FROM outbox WHERE set_aside_at IS NOT NULL AND state != 'confirmed' ORDER BY seq")]


def prune_confirmed(conn: sqlite3.Connection, before: str, limit: int = 5000) -> int:
    """Delete confirmed events older than the retention cut-off (never an unconfirmed one)."""
    return conn.execute(
        "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox WHERE state='confirmed' AND confirmed_at < ?"
        " LIMIT ?)", (before, limit)).rowcount


def reopen_range(conn: sqlite3.Connection, first_seq: int, last_seq: int) -> dict[str, int]:
    """Head office asked for a replay: confirmed events in the range go back to pending.

    ``confirmed_at`` is kept on reopened rows: they were confirmed once, so they do not count
    toward the age budget (an old replayed event must not make the station refuse new work).
    Returns how many were reopened, how many of the requested events are still stored, and
    how many were expected (events already pruned cannot be replayed).
    """
    reopened = conn.execute("UPDATE outbox SET state='pending' WHERE seq BETWEEN ? AND ? AND state='confirmed'",
                            (first_seq, last_seq)).rowcount
    # Set aside as too large: head office raised the broker's limit and asks for it.
    conn.execute("UPDATE outbox SET set_aside_at = NULL WHERE seq BETWEEN ? AND ? AND set_aside_at IS NOT NULL",
                 (first_seq, last_seq))
    highest = conn.execute("SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name='outbox'").fetchone()[0]
    top = min(last_seq, highest)
    expected = max(0, top - first_seq + 1)
    stored = conn.execute("SELECT count(*) FROM outbox WHERE seq BETWEEN ? AND ?", (first_seq, top)).fetchone()[0]
    return {"reopened": reopened, "stored": stored, "expected": expected}


def stats(conn: sqlite3.Connection) -> dict[str, Any]:
    counts = dict(conn.execute("SELECT state, count(*) FROM outbox WHERE state != 'confirmed' GROUP BY state").fetchall())
    confirmed = conn.execute("SELECT count(*) FROM outbox WHERE state = 'confirmed'").fetchone()[0]
    oldest = conn.execute("SELECT created_at FROM outbox WHERE state != 'confirmed' ORDER BY seq LIMIT 1").fetchone()
    totals = conn.execute("SELECT * FROM outbox_totals WHERE one=1").fetchone()
    state = conn.execute("SELECT * FROM sync_state WHERE one=1").fetchone()
    age = None
    if oldest is not None:
        age = (datetime.now(timezone.utc) - datetime.fromisoformat(oldest[0].replace("Z", "+00:00"))).total_seconds()
    return {
        "pending": counts.get("pending", 0),
        "delivered": counts.get("delivered", 0),
        "confirmed": confirmed,
        "unconfirmed_bytes": totals["pending_bytes"],
        "oldest_pending_at": oldest[0] if oldest else None,
        "oldest_pending_age_s": round(age, 3) if age is not None else None,
        "last_success_at": state["last_success_at"],
        "set_aside": conn.execute("SELECT count(*) FROM outbox WHERE set_aside_at IS NOT NULL"
                                  " AND state != 'confirmed'").fetchone()[0],
        "refused": totals["refused_count"],
        "last_refused_at": totals["last_refused_at"],
        "budget_bytes": totals["max_bytes"],
        "budget_age_s": totals["max_age_s"],
    }
