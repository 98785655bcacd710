"""Idempotency-Key handling (Stripe convention, IETF draft semantics).

The key's record is written in the same transaction as the effect, so a crash can never
leave an effect without its record (which would double-book on retry) or a record
without its effect. A retry with the same key and body replays the first response; the
same key with another body is a 422.
"""
from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from agent.clock import iso, now_iso, utcnow
from agent.errors import AgentError
from agent.store.db import Database

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> None:
    if not _KEY.match(key):
        raise AgentError("invalid_idempotency_key",
                         "Idempotency-Key no válida: 1 a 255 caracteres ASCII visibles.",
                         "Invalid Idempotency-Key: 1 to 255 visible ASCII characters.", status=400,
                         field="Idempotency-Key")


def run_idempotent(
    db: Database,
    client: str,
    key: str | None,
    print_: str,
    op: Callable[[sqlite3.Connection], tuple[int, Any]],
) -> tuple[int, Any, bool]:
    """Run ``op`` once per (client, key); return (status, body, replayed)."""
    if key is None:
        status, body = db.write(op)
        return status, body, False
    check_key(key)

    def run(conn: sqlite3.Connection) -> tuple[int, Any, bool]:
        row = conn.execute("SELECT fingerprint, status, body FROM idempotency_keys WHERE client=? AND key=?",
                           (client, key)).fetchone()
        if row is not None:
            if row["fingerprint"] != print_:
                raise AgentError(
                    "idempotency_key_reused",
                    "Esa Idempotency-Key ya se usó con otra solicitud distinta; use una clave nueva.",
                    "That Idempotency-Key was already used with a different request; use a new key.",
                    status=422, field="Idempotency-Key")
            return row["status"], json.loads(row["body"]), True
        status, body = op(conn)
        conn.execute("INSERT INTO idempotency_keys(client, key, fingerprint, status, body, created_at)"
                     " VALUES (?,?,?,?,?,?)", (client, key, print_, status, json.dumps(body, default=str), now_iso()))
        return status, body, False

    return db.write(run)


def prune(db: Database, retention: timedelta) -> int:
    cutoff = iso(utcnow() - retention)
    return db.write(lambda c: c.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (cutoff,)).rowcount)
