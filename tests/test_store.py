"""The SQLite store itself: durability settings, migrations, atomic change + history + outbox."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.customers.models import CustomerCreate
from agent.queue.outbox import OutboxFull, append_event, configure_budget
from agent.services import Services
from agent.store.db import Database
from agent.store.migrations import all_migrations, apply_migrations
from tests.conftest import MARIA


def test_wal_and_full_synchronous(services: Services) -> None:
    conn = services.db._writer  # the writer's own settings are what matter
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.db", all_migrations())
    try:
        assert apply_migrations(db, all_migrations()) == []
        names = db.read(lambda c: [r[0] for r in c.execute("SELECT name FROM schema_migrations ORDER BY rowid")])
        assert names == [m[0] for m in all_migrations()]
    finally:
        db.close()


def test_a_failing_migration_leaves_no_trace(tmp_path: Path) -> None:
    db = Database(tmp_path / "b.db", [("t_001", "CREATE TABLE t(x)")])
    try:
        with pytest.raises(sqlite3.OperationalError):
            apply_migrations(db, [("t_002", "CREATE TABLE u(x); CREATE TABLE t(x);")])
        tables = db.read(lambda c: {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")})
        assert "u" not in tables
        assert db.read(lambda c: c.execute("SELECT count(*) FROM schema_migrations WHERE name='t_002'").fetchone()[0]) == 0
    finally:
        db.close()


def test_failure_after_the_insert_rolls_back_customer_history_and_event(services: Services) -> None:
    body = CustomerCreate.model_validate(MARIA)

    def create_then_fail(conn: sqlite3.Connection) -> None:
        services.customers.create_tx(conn, body, "test")
        raise RuntimeError("power cut simulated after the inserts")

    with pytest.raises(RuntimeError):
        services.db.write(create_then_fail)
    assert services.db.read(lambda c: [c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                       for t in ("customers", "customer_changes", "outbox")]) == [0, 0, 0]


def test_outbox_sequence_is_gap_free_across_rollbacks(services: Services) -> None:
    services.db.write(lambda c: append_event(c, "test.one", {}))

    def append_and_fail(conn: sqlite3.Connection) -> None:
        append_event(conn, "test.lost", {})
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        services.db.write(append_and_fail)
    services.db.write(lambda c: append_event(c, "test.two", {}))
    rows = services.db.read(lambda c: c.execute("SELECT seq, type FROM outbox ORDER BY seq").fetchall())
    assert [(r[0], r[1]) for r in rows] == [(1, "test.one"), (2, "test.two")]


def test_outbox_budget_refuses_new_work_and_keeps_old(services: Services) -> None:
    services.db.write(lambda c: configure_budget(c, 300, None))
    services.db.write(lambda c: append_event(c, "test.a", {"x": "a" * 200}))
    with pytest.raises(OutboxFull) as err:
        services.db.write(lambda c: append_event(c, "test.b", {"x": "b" * 200}))
    assert err.value.status == 507
    assert services.db.read(lambda c: c.execute("SELECT count(*) FROM outbox").fetchone()[0]) == 1


def test_committed_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = Database(path, all_migrations())
    db.write(lambda c: append_event(c, "test.durable", {"n": 1}))
    db.close()
    again = Database(path, all_migrations())
    try:
        assert again.read(lambda c: c.execute("SELECT type FROM outbox").fetchone()[0]) == "test.durable"
    finally:
        again.close()


def test_outbox_age_budget_refuses_new_work_when_the_oldest_event_is_too_old(services: Services) -> None:
    services.db.write(lambda c: configure_budget(c, None, 3600))
    services.db.write(lambda c: append_event(c, "test.old", {}))
    services.db.write(lambda c: c.execute("UPDATE outbox SET created_at='2020-01-01T00:00:00.000Z'"))
    with pytest.raises(OutboxFull) as err:
        services.db.write(lambda c: append_event(c, "test.new", {}))
    assert err.value.extra == {"reason": "age"}
