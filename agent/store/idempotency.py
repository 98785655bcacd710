"""Idempotency keys: the stored first answer of an operation, replayed when it is retried."""
from __future__ import annotations

from datetime import timedelta

from agent.clock import iso, utcnow
from agent.store.db import Database


def prune(db: Database, retention: timedelta) -> int:
    """Forget keys older than ``retention`` (a retry after that is a new operation)."""
    cutoff = iso(utcnow() - retention)
    return db.write(lambda c: c.execute("DELETE FROM idempotency_keys WHERE created_at < ?", (cutoff,)).rowcount)
