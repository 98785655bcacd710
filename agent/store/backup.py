"""Consistent copies of a live SQLite database (the online backup API), 0600.

A plain ``cp`` of ``agent.db`` while the agent writes can copy a torn file, and misses what is
still in ``agent.db-wal``. SQLite's backup API copies every page of one read snapshot in a single
step: in WAL mode the agent keeps writing meanwhile, and the copy is exactly the database as of
one commit, with each change, its history and its outbox event together or not at all.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)

PRE_MIGRATION_DIR = "backups"
KEEP_PRE_MIGRATION = 3


def snapshot(source: Path, dest: Path) -> None:
    """Copy the database ``source`` to ``dest`` (a new file, 0600) as of one commit.

    The copy is a self-contained file (rollback journal, no -wal), checked with quick_check.
    """
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    tmp.unlink(missing_ok=True)
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # 0600 before a byte is written
    src = sqlite3.connect(source, timeout=30.0)
    try:
        src.execute("PRAGMA query_only=ON")
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)  # pages=-1: the whole snapshot in one step, writers are not blocked (WAL)
            dst.execute("PRAGMA journal_mode=DELETE")  # one file, nothing beside it
            if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError(f"backup of {source} failed its integrity check")
        finally:
            dst.close()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    _fsync(tmp)
    os.replace(tmp, dest)
    _fsync(dest.parent)


def pre_migration_backup(database: Path, pending: list[str]) -> Path:
    """Back up ``database`` into ``backups/`` beside it before ``pending`` migrations run."""
    folder = database.parent / PRE_MIGRATION_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    dest = folder / f"pre-migration-{time.strftime('%Y%m%dT%H%M%S')}-{pending[0]}.db"
    started = time.monotonic()
    snapshot(database, dest)
    log.warning("base de datos respaldada en %s antes de las migraciones %s (%.1f s) [backup_before_migration]", dest, ", ".join(pending),
                time.monotonic() - started)
    old = sorted(folder.glob("pre-migration-*.db"), key=lambda p: p.stat().st_mtime)
    for stale in old[:-KEEP_PRE_MIGRATION]:
        stale.unlink(missing_ok=True)
    return dest


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
