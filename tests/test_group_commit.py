"""Group commit (issue 12, concurrency tail): writes queued behind the writer commit together,
each with its own result or exception, and a failing write does not undo the others."""
from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from agent.store.db import Database
from agent.store.outbox import append_event

_MIGRATIONS = [("g_001", "CREATE TABLE t(n INTEGER PRIMARY KEY, v TEXT NOT NULL)")]


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    from agent.station import MIGRATIONS

    database = Database(tmp_path / "g.db", [*MIGRATIONS, *_MIGRATIONS])
    yield database
    database.close()


def _count_commits(db: Database) -> list[str]:
    seen: list[str] = []
    db._writer.set_trace_callback(lambda sql: seen.append(sql) if sql.strip().upper() == "COMMIT" else None)
    return seen


def test_queued_writes_commit_together_and_a_failing_one_is_rolled_back_alone(db: Database) -> None:
    commits = _count_commits(db)
    release = threading.Event()
    results: dict[int, object] = {}

    def first(conn: sqlite3.Connection) -> int:
        # Hold the writer until seven more writes are queued behind it (what 8 POS do at once).
        deadline = time.monotonic() + 10
        while len(db._queue) < 7 and time.monotonic() < deadline:
            time.sleep(0.005)
        release.set()
        conn.execute("INSERT INTO t VALUES (0, 'first')")
        append_event(conn, "test.written", {"n": 0})
        return 0

    def writer(n: int) -> None:
        def fn(conn: sqlite3.Connection) -> int:
            conn.execute("INSERT INTO t VALUES (?, 'x')", (n,))
            append_event(conn, "test.written", {"n": n})
            if n == 4:
                raise ValueError("this write is refused")  # after its own rows: they must vanish
            if n == 5:
                conn.execute("INSERT INTO t VALUES (1, 'dup')")  # a constraint error, statement level
            return n

        try:
            results[n] = db.write(fn)
        except (ValueError, sqlite3.IntegrityError) as exc:
            results[n] = exc

    leader = threading.Thread(target=lambda: results.__setitem__(0, db.write(first)))
    leader.start()
    while db._queue or not db._write_lock.locked():
        time.sleep(0.001)  # the leader has taken its own write and holds the lock
    others = [threading.Thread(target=writer, args=(n,)) for n in range(1, 8)]
    for t in others:
        t.start()
    for t in [leader, *others]:
        t.join(20)
    assert release.is_set()
    assert isinstance(results[4], ValueError) and isinstance(results[5], sqlite3.IntegrityError)
    assert {n: results[n] for n in (0, 1, 2, 3, 6, 7)} == {n: n for n in (0, 1, 2, 3, 6, 7)}
    # Seven queued writes, one transaction and one fsync for them, plus the leader's own.
    assert len(commits) == 2
    stored = db.read(lambda c: [r[0] for r in c.execute("SELECT n FROM t ORDER BY n")])
    assert stored == [0, 1, 2, 3, 6, 7]
    events = db.read(lambda c: [r[0] for r in c.execute(
        "SELECT json_extract(payload, '$.n') FROM outbox WHERE type='test.written' ORDER BY seq")])
    assert sorted(events) == [0, 1, 2, 3, 6, 7]


def test_a_write_queued_past_the_group_limit_is_still_written(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # More writes queued ahead than one group takes (the lock is not handed out in queue order):
    # the caller commits groups from the head of the queue until its own write is in one, and
    # never returns before its write committed.
    import agent.store.db as store_db

    monkeypatch.setattr(store_db, "_GROUP_MAX", 2)
    ahead = [store_db._Pending(lambda conn, n=n: conn.execute("INSERT INTO t VALUES (?, 'ahead')", (n,)) and n)
             for n in (1, 2, 3)]
    db._queue.extend(ahead)  # queued by callers that have not got the lock yet
    assert db.write(lambda conn: (conn.execute("INSERT INTO t VALUES (9, 'mine')"), 9)[1]) == 9
    assert all(item.done and item.error is None for item in ahead)
    assert db.read(lambda c: [r[0] for r in c.execute("SELECT n FROM t ORDER BY n")]) == [1, 2, 3, 9]


def test_a_failed_commit_reruns_the_other_writes_of_the_group_alone(db: Database) -> None:
    release = threading.Event()
    outcome: dict[str, object] = {}

    def first(conn: sqlite3.Connection) -> None:
        while len(db._queue) < 2:
            time.sleep(0.005)
        release.set()

    def breaks_the_commit(conn: sqlite3.Connection) -> None:
        # A deferred foreign key violation passes its statement and fails only at COMMIT.
        conn.execute("PRAGMA defer_foreign_keys=ON")
        conn.execute("INSERT INTO customer_changes(customer_id, field, at, actor) VALUES ('nobody','f','t','a')")

    def plain(conn: sqlite3.Connection) -> str:
        conn.execute("INSERT INTO t VALUES (10, 'stored after all')")
        return "ok"

    def run(name: str, fn: object) -> None:
        try:
            outcome[name] = db.write(fn)  # type: ignore[arg-type]
        except sqlite3.Error as exc:
            outcome[name] = exc

    leader = threading.Thread(target=run, args=("first", first))
    leader.start()
    while db._queue or not db._write_lock.locked():
        time.sleep(0.001)
    a = threading.Thread(target=run, args=("breaks", breaks_the_commit))
    a.start()
    while len(db._queue) < 1:
        time.sleep(0.001)
    b = threading.Thread(target=run, args=("plain", plain))
    b.start()
    for t in (leader, a, b):
        t.join(20)
    assert isinstance(outcome["breaks"], sqlite3.IntegrityError)
    # Its group's COMMIT failed; the other write ran again alone and is stored.
    assert outcome["plain"] == "ok"
    assert db.read(lambda c: [r[0] for r in c.execute("SELECT v FROM t")]) == ["stored after all"]
    assert db.write(lambda c: c.execute("INSERT INTO t VALUES (11, 'next')").rowcount) == 1
