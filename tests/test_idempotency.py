"""The store's one idempotency helper (``once``) and the outbox-full hook, on a real SQLite store."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from agent.customers.models import CustomerCreate
from agent.errors import AgentError
from agent.station import MIGRATIONS, Station
from agent.store.db import Database
from agent.store.idempotency import IdempotencyKeyReused, once, replay
from agent.store.migrations import apply_migrations
from agent.store.outbox import OutboxFull, append_event, configure_budget
from tests.conftest import MARIA


@pytest.fixture
def db(tmp_path: Path) -> Any:
    database = Database(tmp_path / "agent.db", MIGRATIONS)
    yield database
    database.close()


def _booking(conn: sqlite3.Connection, calls: list[int]) -> dict[str, Any]:
    calls.append(1)
    append_event(conn, "test.booked", {"n": len(calls)})
    return {"booked": len(calls)}


def _events(db: Database) -> int:
    return db.read(lambda c: c.execute("SELECT count(*) FROM outbox").fetchone()[0])


def test_once_runs_an_operation_once_per_key_and_replays_its_answer(db: Database) -> None:
    calls: list[int] = []
    first = db.write(lambda c: once(c, "pos-1", "k-1", "fp", lambda c2: _booking(c2, calls)))
    again = db.write(lambda c: once(c, "pos-1", "k-1", "fp", lambda c2: _booking(c2, calls)))
    assert first == ({"booked": 1}, False) and again == ({"booked": 1}, True)
    assert calls == [1] and _events(db) == 1
    # The same key in another scope (another client, another service) is another operation.
    assert db.write(lambda c: once(c, "pos-2", "k-1", "fp", lambda c2: _booking(c2, calls))) == ({"booked": 2}, False)
    # Without a key the operation simply runs, every time.
    assert db.write(lambda c: once(c, "pos-1", None, "", lambda c2: _booking(c2, calls)))[1] is False
    assert db.write(lambda c: once(c, "pos-1", None, "", lambda c2: _booking(c2, calls)))[1] is False
    assert calls == [1, 1, 1, 1] and _events(db) == 4
    assert db.read(lambda c: replay(c, "pos-1", "k-1", "fp")) == {"booked": 1}
    assert db.read(lambda c: replay(c, "pos-1", "unknown", "fp")) is None


def test_the_same_key_with_another_request_is_refused_and_changes_nothing(db: Database) -> None:
    calls: list[int] = []
    db.write(lambda c: once(c, "pos-1", "k-1", "fp-a", lambda c2: _booking(c2, calls)))
    with pytest.raises(IdempotencyKeyReused) as err:
        db.write(lambda c: once(c, "pos-1", "k-1", "fp-b", lambda c2: _booking(c2, calls)))
    assert err.value.code == "idempotency_key_reused" and err.value.status == 422
    assert err.value.errors[0].field == "Idempotency-Key"
    assert calls == [1] and _events(db) == 1


def test_a_failed_operation_leaves_no_key_so_the_retry_runs_it(db: Database) -> None:
    def fail(conn: sqlite3.Connection) -> dict[str, Any]:
        append_event(conn, "test.half", {})
        raise AgentError("boom", "falla", "fails")

    with pytest.raises(AgentError):
        db.write(lambda c: once(c, "pos-1", "k-1", "fp", fail))
    assert _events(db) == 0 and db.read(lambda c: replay(c, "pos-1", "k-1", "fp")) is None
    calls: list[int] = []
    assert db.write(lambda c: once(c, "pos-1", "k-1", "fp", lambda c2: _booking(c2, calls))) == ({"booked": 1}, False)


def test_loyalty_keys_stored_before_the_upgrade_still_replay(tmp_path: Path) -> None:
    before = [m for m in MIGRATIONS if m[0] != "loyalty_004_idempotency_keys"]
    db = Database(tmp_path / "agent.db", before)
    try:
        db.write(lambda c: c.execute(
            "INSERT INTO loyalty_sales(sale_id, station, pos, number, idempotency_key, fingerprint, account_id,"
            " card_number, session_id, occurred_at, total_amount, points, response)"
            " VALUES ('s1', 'ST01', 'P1', 'B-1', 'pos-1:k-1', 'fp', 'A1', '6000', 'sw', '2026-01-01T00:00:00.000Z',"
            " '1000', 10, '{\"sale_id\": \"s1\"}')"))
        assert apply_migrations(db, MIGRATIONS) == ["loyalty_004_idempotency_keys"]
        assert db.read(lambda c: replay(c, "loyalty:sales", "pos-1:k-1", "fp")) == {"sale_id": "s1"}
        with pytest.raises(IdempotencyKeyReused):
            db.read(lambda c: replay(c, "loyalty:sales", "pos-1:k-1", "another body"))
    finally:
        db.close()


def test_a_refusal_is_counted_whoever_hit_the_full_queue(services: Station) -> None:
    """Not only through the HTTP error handler: a service called directly moves the counter too."""
    services.db.write(lambda c: configure_budget(c, 1, None))  # one byte: no event fits
    with pytest.raises(OutboxFull):
        services.customers.create(CustomerCreate.model_validate(MARIA), "test")
    with pytest.raises(OutboxFull):
        services.db.write(lambda c: append_event(c, "test.other", {}))
    status = services.sync.status()
    assert status["refused"] == 2 and status["last_refused_at"] is not None
    assert status["pending"] == 0
