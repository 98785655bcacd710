"""SQLite access: one writer, many readers, every change durable before it is acknowledged.

WAL mode lets readers run while the writer commits; ``synchronous=FULL`` makes each commit
survive a power cut (NORMAL may lose the last commits, see docs/store.md). All writes go
through one connection guarded by a lock and run inside ``BEGIN IMMEDIATE``, so a write
transaction never fails half-way on a lock upgrade and the change, its history rows and its
outbox event commit together or not at all.

Before anything is opened, ``agent.store.guard`` checks the folder, the file header and that
the WAL belongs to this database; ``verify=True`` (the running agent) adds ``quick_check``.
A full disk is a 507 ``storage_full`` that changes nothing, and the store recovers by itself
once there is space again (a failed COMMIT is rolled back, never left open).

The WAL stays bounded under any load: a passive checkpoint every second copies what it can,
and when the WAL passes ``wal_soft_limit_bytes`` (checked after each commit) the writer runs a
TRUNCATE checkpoint under the write lock, waiting for the (short) read transactions to end, so
continuous readers can no longer keep it from restarting.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from agent.store import guard
from agent.store.guard import StorageFull
from agent.store.outbox import OutboxFull

T = TypeVar("T")
log = logging.getLogger(__name__)

# What SQLite keeps of the WAL file after it restarts (it is reused, not regrown).
_WAL_LIMIT_BYTES = 64 * 1024 * 1024
# Past this the checkpointer forces a restart of the WAL (see the module docstring).
WAL_SOFT_LIMIT_BYTES = 32 * 1024 * 1024
# Checkpoints run on a background connection instead of inside whichever commit crosses
# SQLite's auto-checkpoint threshold: that commit would otherwise also copy and fsync up to
# 1000 pages into the database file, the slowest request of the minute (p99).
_CHECKPOINT_EVERY_S = 1.0


# Writes committed together at most (a bounded transaction under any queue length).
_GROUP_MAX = 64


class _Pending:
    """One queued write and, once its group is committed or rolled back, its outcome."""

    __slots__ = ("fn", "done", "result", "error")

    def __init__(self, fn: Callable[[sqlite3.Connection], object]) -> None:
        self.fn = fn
        self.done = False
        self.result: object = None
        self.error: BaseException | None = None

    def fail(self, error: BaseException) -> None:
        self.result, self.error = None, error


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

    def __init__(self, path: Path | str, migrations: Iterable[tuple[str, str]] | None = None, *,
                 verify: bool = False, wal_soft_limit_bytes: int = WAL_SOFT_LIMIT_BYTES,
                 writer_version: str | None = None,
                 before_migrating: Callable[[list[str]], None] | None = None) -> None:
        self.path = Path(path)
        guard.preflight(self.path)
        if verify and self.path.exists():
            guard.quick_check(self.path)
        self.wal_soft_limit_bytes = wal_soft_limit_bytes
        # Why writes fail right now ("disk_full"), for /v1/health; cleared by the next commit.
        self.storage_problem: str | None = None
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        try:
            self._writer = _connect(self.path, readonly=False)
            mode = self._writer.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise guard.damaged(self.path, str(exc)) from None
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

            try:
                apply_migrations(self, migrations, writer_version=writer_version, before_migrating=before_migrating)
            except BaseException:
                self._writer.close()  # a refused or failed migration leaves no open handle behind
                raise
        self.identity = self._ensure_identity()
        self._recorded_wal: tuple[int, int] | None = None
        self._start_wal_generation()
        self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True)
        self._checkpointer.start()

    def _ensure_identity(self) -> str:
        """A random id for this database file (read, so an existing store needs no write)."""
        def read(conn: sqlite3.Connection) -> str | None:
            exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'store_identity'").fetchone()
            row = conn.execute("SELECT identity FROM store_identity").fetchone() if exists else None
            return row[0] if row else None

        identity = self.read(read)
        if identity is not None:
            return identity

        def create(conn: sqlite3.Connection) -> str:
            conn.execute("CREATE TABLE IF NOT EXISTS store_identity ("
                         " one INTEGER PRIMARY KEY CHECK (one = 1), identity TEXT NOT NULL)")
            conn.execute("INSERT OR IGNORE INTO store_identity(one, identity) VALUES (1, ?)", (uuid.uuid4().hex,))
            return conn.execute("SELECT identity FROM store_identity").fetchone()[0]

        return self.write(create)

    def _start_wal_generation(self) -> None:
        """Record which WAL belongs to this database (``agent.store.guard``).

        A WAL started from nothing gets random salts. If that happens here, with a write that
        changes nothing, and is recorded at once, a crash can only ever leave an unrecorded
        WAL holding that no-op, not a customer's transaction."""
        if guard.wal_salts(self.path) is None:
            try:
                self.write(lambda c: c.execute("UPDATE store_identity SET identity = identity"))
            except StorageFull:
                return  # a full disk: the first write that gets through records it
        self._record_wal()

    def _record_wal(self) -> None:
        try:
            self._recorded_wal = guard.record_wal(self.path, self.identity, self._recorded_wal)
        except OSError:
            pass  # disk full: the record is a hint, retried after the next commit

    def _checkpoint_loop(self) -> None:
        conn = _connect(self.path, readonly=False)
        try:
            while not self._stop_checkpoints.is_set():
                if self._stop_checkpoints.wait(_CHECKPOINT_EVERY_S):
                    break
                try:
                    # PASSIVE never waits for the writer or readers: it copies what it can.
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self._record_wal()
                except (sqlite3.Error, OSError, RuntimeError):
                    pass  # busy, disk full or closing: the next round catches up
        finally:
            conn.close()

    def _wal_bytes(self) -> int:
        try:
            return os.stat(f"{self.path}-wal").st_size
        except FileNotFoundError:
            return 0

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a write transaction; commit (durably) if it returns, roll back if it raises.

        ``fn`` may run on another caller's thread (group commit, ``_write``): it must not rely on
        thread-local state nor wait for a lock its own caller holds; and when its group's
        transaction is lost it runs again alone, so its only effects are on ``conn``."""
        try:
            return self._write(fn)
        except OutboxFull as refused:
            hook = self.on_outbox_full
            if hook is not None:
                try:
                    hook(refused.reason)
                except Exception:  # noqa: BLE001 - the caller must still see the refusal itself
                    log.exception("falló el aviso de cola llena [outbox_hook_failed]")
            raise

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Group commit: queue the write; whoever holds the write lock commits everything queued.

        Under load (8 POS creating at once) each commit's fsync used to be paid once per write,
        one after another, while the others waited for the lock. Now the thread that gets the
        lock runs every queued write in one transaction, each inside its own SAVEPOINT (a write
        that raises is rolled back alone and its caller gets its own exception), and commits them
        with one fsync. Nobody is answered before that COMMIT (``synchronous=FULL``) returned."""
        item: _Pending = _Pending(fn)
        with self._queue_lock:
            self._queue.append(item)
        with self._write_lock:
            # Either an earlier holder already committed our write, or it is still queued and we
            # commit the queue from its head, group after group, until ours is in one (more than
            # _GROUP_MAX writers may be queued ahead of it).
            while not item.done:
                with self._queue_lock:
                    group, self._queue = self._queue[:_GROUP_MAX], self._queue[_GROUP_MAX:]
                self._commit_group(group)
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[return-value]

    def _commit_group(self, group: list[_Pending]) -> None:
        """Under the write lock: run ``group`` in one transaction; every item ends done."""
        try:
            if self._closed:
                raise RuntimeError("database is closed")
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    committed = self._run_group(conn, group)
                    if committed:
                        conn.execute("COMMIT")
                    else:
                        conn.execute("ROLLBACK")
                except BaseException:
                    # Also after a failed COMMIT (disk full): a transaction left open would make
                    # every later write fail until a restart.
                    if conn.in_transaction:
                        try:
                            conn.execute("ROLLBACK")
                        except sqlite3.Error:
                            log.warning("falló el rollback tras una escritura fallida [rollback_failed]")
                    raise
            except sqlite3.OperationalError as exc:
                raise self._storage_error(exc) from None
        except BaseException as exc:  # noqa: BLE001 - handed to every caller whose write was lost
            lost = [item for item in group if item.error is None]  # a write that failed alone keeps its error
            if len(group) > 1 and not self._closed:
                # The whole transaction was lost (a full disk, a constraint checked at COMMIT):
                # each write that had not failed by itself runs again alone, as it would have
                # without group commit, so one write's trouble never fails the others.
                for item in lost:
                    item.result = None
                    self._commit_group([item])
                return
            for item in lost:
                item.fail(exc)
            return
        finally:
            for item in group:
                item.done = True
        if any(item.error is None for item in group):
            self._after_commit()

    def _run_group(self, conn: sqlite3.Connection, group: list[_Pending]) -> bool:
        """Each write in its own savepoint; True when at least one succeeded (worth a COMMIT).

        A lone write needs no savepoint: its exception rolls the whole transaction back."""
        if len(group) == 1:
            group[0].result = group[0].fn(conn)
            return True
        ok = False
        for item in group:
            conn.execute("SAVEPOINT one_write")
            try:
                item.result = item.fn(conn)
            except BaseException as exc:  # noqa: BLE001 - this caller's own error, the others go on
                if not conn.in_transaction:
                    raise  # SQLite gave up the whole transaction (disk full, I/O error): rerun alone
                conn.execute("ROLLBACK TO one_write")
                conn.execute("RELEASE one_write")
                item.fail(self._storage_error(exc) if isinstance(exc, sqlite3.OperationalError) else exc)
                continue
            conn.execute("RELEASE one_write")
            ok = True
        return ok

    def _storage_error(self, exc: BaseException) -> BaseException:
        """A full disk becomes the 507 ``StorageFull`` (and the health reason); others unchanged."""
        if isinstance(exc, sqlite3.OperationalError) and exc.sqlite_errorcode == sqlite3.SQLITE_FULL:
            if self.storage_problem != "disk_full":
                log.error("el disco de la estación está lleno: se rechazan escrituras hasta que haya espacio [disk_full]")
            self.storage_problem = "disk_full"
            return StorageFull()
        return exc

    def _after_commit(self) -> None:
        if self.storage_problem is not None:
            log.warning("las escrituras funcionan de nuevo (hay espacio en disco) [disk_back]")
            self.storage_problem = None
        if self._wal_bytes() > self.wal_soft_limit_bytes:
            self._truncate_wal()
        if hasattr(self, "identity") and guard.wal_salts(self.path) != self._recorded_wal:
            self._record_wal()  # a new WAL generation: recorded before the commit is acknowledged

    def _truncate_wal(self) -> None:
        """Under the write lock: copy the WAL into the database and restart it from zero.

        Done by the writer that crossed the limit (not the background thread, which could wait
        long for the lock while writers keep appending), so the WAL never passes the limit by
        more than one transaction."""
        try:
            self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("falló el checkpoint del WAL (%s); se reintenta tras la próxima escritura [checkpoint_failed]", type(exc).__name__)

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
        """Copy the whole WAL into the database and truncate it (waits for readers to finish)."""
        with self._write_lock:
            if self._closed:
                raise RuntimeError("database is closed")
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
