"""The outbox's bookkeeping for the publisher: what the broker (PUBACK) and head office (acks)
said, made durable in one transaction, and the retention purge of confirmed rows.

Group-committed every few milliseconds by the publisher's thread. Kept in memory until the
write succeeds: when it fails (disk full, another process holding the lock past the busy
timeout) it is retried a second later, never dropped, so an acknowledged event does not stay
``delivered`` until a restart.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from agent.clock import iso, now_iso, utcnow
from agent.queue.scheduler import Progress
from agent.store import outbox
from agent.store.db import Database

log = logging.getLogger(__name__)
RETRY_AFTER_FAILURE_S = 1.0


class ProgressRecorder:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.marks = Progress()
        self.next_try = 0.0  # monotonic time before which a flush is not worth trying
        self._failing = False

    @property
    def pending(self) -> bool:
        return bool(self.marks.delivered or self.marks.confirmed or self.marks.confirmed_ids)

    def flush(self) -> None:
        marks = self.marks
        if not self.pending:
            return
        at = now_iso()
        try:
            self._db.write(lambda c: outbox.record_progress(c, marks.delivered, marks.confirmed,
                                                             marks.confirmed_ids, at))
        except Exception as exc:  # noqa: BLE001 - disk full, a lock held past the busy timeout, ...
            self.next_try = time.monotonic() + RETRY_AFTER_FAILURE_S
            if not self._failing:
                self._failing = True
                log.error("no se pudo registrar el avance de la sincronización (%s); se guarda en memoria y se "
                          "reintenta [sync_progress_failed]", type(exc).__name__)
            return
        if self._failing:
            self._failing = False
            log.warning("el avance de la sincronización se registra de nuevo [sync_progress_back]")
        self.marks = Progress()


def prune_confirmed(db: Database, retention_days: int, stop: threading.Event) -> None:
    """Delete rows confirmed more than ``retention_days`` ago, 5,000 per transaction."""
    cutoff = iso(utcnow() - timedelta(days=retention_days))
    while True:
        removed = db.write(lambda c: outbox.prune_confirmed(c, cutoff))
        if removed < 5000 or stop.is_set():
            break
