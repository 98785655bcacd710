"""Idempotency keys: an operation runs once per key; a retry gets the stored first answer.

One mechanism for every service that takes an ``Idempotency-Key`` (customers, sales, returns,
voids, redemptions). The key's record is written in the same transaction as the effect, so a
crash can never leave an effect without its record (which would book twice on retry) or a
record without its effect. The same key with a different request (another ``fingerprint``) is
refused with a 422. Keys are kept ``api.idempotency_retention_hours`` (``prune``).
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from agent.clock import iso, now_iso, utcnow
from agent.errors import AgentError
from agent.store.db import Database


class IdempotencyKeyReused(AgentError):
    def __init__(self) -> None:
        super().__init__(
            "idempotency_key_reused",
            "Esa Idempotency-Key ya se usó con otra solicitud distinta; use una clave nueva.",
            "That Idempotency-Key was already used with a different request; use a new key.",
            status=422, field="Idempotency-Key")


def replay(conn: sqlite3.Connection, scope: str, key: str, fingerprint: str) -> Any | None:
    """The stored answer for (``scope``, ``key``), None if there is none; ``IdempotencyKeyReused``
    if the key was used for another request. Also usable on a read connection, to answer a
    retry without taking the write lock."""
    row = conn.execute("SELECT fingerprint, body FROM idempotency_keys WHERE client=? AND key=?",
                       (scope, key)).fetchone()
    if row is None:
        return None
    if row["fingerprint"] != fingerprint:
        raise IdempotencyKeyReused()
    return json.loads(row["body"])


def once(conn: sqlite3.Connection, scope: str, key: str | None, fingerprint: str,
         op: Callable[[sqlite3.Connection], Any]) -> tuple[Any, bool]:
    """Run ``op(conn)`` once per (``scope``, ``key``) inside the caller's write transaction and
    return (its JSON-able answer, replayed). Without a key, ``op`` simply runs.

    ``scope`` keeps unrelated operations apart: the API client's name for customers, and a name
    with a ``:`` (which client names cannot contain) for the other services."""
    if key is None:
        return op(conn), False
    stored = replay(conn, scope, key, fingerprint)
    if stored is not None:
        return stored, True
    answer = op(conn)
    # ``status`` predates this helper (the API stored its HTTP status); each route knows its own.
    conn.execute("INSERT INTO idempotency_keys(client, key, fingerprint, status, body, created_at)"
                 " VALUES (?,?,?,?,?,?)", (scope, key, fingerprint, 0, json.dumps(answer, default=str), now_iso()))
    return answer, False


def prune(db: Database, retention: timedelta) -> int:
    """Forget keys older than ``retention`` (a retry after that is a new operation)."""
    cutoff = iso(utcnow() - retention)
    return db.write(lambda c: c.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (cutoff,)).rowcount)
