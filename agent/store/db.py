"""SQLite access: one writer, many readers, every change durable before it is acknowledged.

WAL mode lets readers run while the writer commits; ``synchronous=FULL`` makes each commit
survive a power cut (NORMAL may lose the last commits, see docs/store.md). All writes go
through one connection guarded by a lock and run inside ``BEGIN IMMEDIATE``, so a write
transaction never fails half-way on a lock upgrade and the change, its history rows and its
outbox event commit together or not at all.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from agent.store.outbox import OutboxFull

log = logging.getLogger(__name__)

T = TypeVar("T")

# Cap the WAL so an SD card is not filled by a reader that pins an old snapshot.
_WAL_LIMIT_BYTES = 64 * 1024 * 1024
# Checkpoints run on a background connection instead of inside whichever commit crosses
# SQLite's auto-checkpoint threshold: that commit would otherwise also copy and fsync up to
# 1000 pages into the database file, the slowest request of the minute (p99).
_CHECKPOINT_EVERY_S = 1.0


def _connect(path: Path, *, readonly: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path,
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        check_same_thread=False,
        timeout=30.0,
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    if readonly:
        conn.execute("PRAGMA query_only=ON")
    return conn


class Database:
    """The station's SQLite store.

    ``write(fn)`` runs ``fn(conn)`` in one immediate transaction on the single writer
    connection; ``read(fn)`` runs it on a per-thread read connection.
    """

    def __init__(self, path: Path | str, migrations: Iterable[tuple[str, str]] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._writer = _connect(self.path, readonly=False)
        mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise RuntimeError(f"SQLite refused WAL mode (got {mode})")
        self._writer.execute("PRAGMA synchronous=FULL")
        # Deleted rows (biometric templates, withdrawn personal data) are overwritten, not left in free pages.
        self._writer.execute("PRAGMA secure_delete=ON")
        self._writer.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT_BYTES}")
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        # Called with the reason ("bytes" or "age") after a write was refused because the sync
        # queue is full, outside the rolled-back transaction, whoever called (API, CLI, downlink).
        # The station sets it when it is built (SyncService.on_outbox_full counts and alerts).
        self.on_outbox_full: Callable[[str], None] | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        self._stop_checkpoints = threading.Event()
        if migrations is not None:
            from agent.store.migrations import apply_migrations

            apply_migrations(self, migrations)
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True)
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        conn = _connect(self.path, readonly=False)
        try:
            while not self._stop_checkpoints.wait(_CHECKPOINT_EVERY_S):
                try:
                    # PASSIVE never waits for the writer or readers: it copies what it can.
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    pass  # busy or closing: the next round catches up
        finally:
            conn.close()

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a write transaction; commit (durably) if it returns, roll back if it raises."""
        try:
            return self._write(fn)
        except OutboxFull as refused:
            hook = self.on_outbox_full
            if hook is not None:
                try:
                    hook(refused.reason)
                except Exception:  # noqa: BLE001 - the caller must still see the refusal itself
                    log.exception("outbox-full hook failed")
            raise

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with self._write_lock:
            if self._closed:
                raise RuntimeError("database is closed")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on this thread's read connection inside one read transaction (a consistent snapshot)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, readonly=True)
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("COMMIT")

    def checkpoint(self) -> None:
        with self._write_lock:
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def integrity_ok(self) -> bool:
        return self.read(lambda c: c.execute("PRAGMA quick_check").fetchone()[0] == "ok")

    def close(self) -> None:
        self._stop_checkpoints.set()
        if self._checkpointer.is_alive() and self._checkpointer is not threading.current_thread():
            self._checkpointer.join(5)
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # a reader still holds a snapshot; the next start checkpoints
            self._writer.close()
        with self._readers_lock:
            for conn in self._readers:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:
                    pass  # belongs to a thread that is gone; closing from here is harmless
            self._readers.clear()
