"""The SQLite store itself: durability settings, migrations, atomic change + history + outbox."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.customers.models import CustomerCreate
from agent.store.outbox import OutboxFull, append_event, configure_budget
from agent.station import Station
from agent.store.db import Database
from agent.station import MIGRATIONS
from agent.store.migrations import apply_migrations
from tests.conftest import MARIA


def test_wal_and_full_synchronous(services: Station) -> None:
    conn = services.db._writer  # the writer's own settings are what matter
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.db", list(MIGRATIONS))
    try:
        assert apply_migrations(db, list(MIGRATIONS)) == []
        names = db.read(lambda c: [r[0] for r in c.execute("SELECT name FROM schema_migrations ORDER BY rowid")])
        assert names == [m[0] for m in list(MIGRATIONS)]
    finally:
        db.close()


def test_a_failing_migration_leaves_no_trace(tmp_path: Path) -> None:
    db = Database(tmp_path / "b.db", [("t_001", "CREATE TABLE t(x)")])
    try:
        with pytest.raises(sqlite3.OperationalError):
            apply_migrations(db, [("t_001", "CREATE TABLE t(x)"), ("t_002", "CREATE TABLE u(x); CREATE TABLE t(x);")])
        tables = db.read(lambda c: {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")})
        assert "u" not in tables
        assert db.read(lambda c: c.execute("SELECT count(*) FROM schema_migrations WHERE name='t_002'").fetchone()[0]) == 0
    finally:
        db.close()


def test_failure_after_the_insert_rolls_back_customer_history_and_event(services: Station) -> None:
    body = CustomerCreate.model_validate(MARIA)

    def create_then_fail(conn: sqlite3.Connection) -> None:
        services.customers.create_tx(conn, body, "test")
        raise RuntimeError("power cut simulated after the inserts")

    with pytest.raises(RuntimeError):
        services.db.write(create_then_fail)
    assert services.db.read(lambda c: [c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                       for t in ("customers", "customer_changes", "outbox")]) == [0, 0, 0]


def test_outbox_sequence_is_gap_free_across_rollbacks(services: Station) -> None:
    services.db.write(lambda c: append_event(c, "test.one", {}))

    def append_and_fail(conn: sqlite3.Connection) -> None:
        append_event(conn, "test.lost", {})
        raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        services.db.write(append_and_fail)
    services.db.write(lambda c: append_event(c, "test.two", {}))
    rows = services.db.read(lambda c: c.execute("SELECT seq, type FROM outbox ORDER BY seq").fetchall())
    assert [(r[0], r[1]) for r in rows] == [(1, "test.one"), (2, "test.two")]


def test_outbox_budget_refuses_new_work_and_keeps_old(services: Station) -> None:
    services.db.write(lambda c: configure_budget(c, 300, None))
    services.db.write(lambda c: append_event(c, "test.a", {"x": "a" * 200}))
    with pytest.raises(OutboxFull) as err:
        services.db.write(lambda c: append_event(c, "test.b", {"x": "b" * 200}))
    assert err.value.status == 507
    assert services.db.read(lambda c: c.execute("SELECT count(*) FROM outbox").fetchone()[0]) == 1


def test_committed_data_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = Database(path, list(MIGRATIONS))
    db.write(lambda c: append_event(c, "test.durable", {"n": 1}))
    db.close()
    again = Database(path, list(MIGRATIONS))
    try:
        assert again.read(lambda c: c.execute("SELECT type FROM outbox").fetchone()[0]) == "test.durable"
    finally:
        again.close()


def test_outbox_age_budget_refuses_new_work_when_the_oldest_event_is_too_old(services: Station) -> None:
    services.db.write(lambda c: configure_budget(c, None, 3600))
    services.db.write(lambda c: append_event(c, "test.old", {}))
    services.db.write(lambda c: c.execute("UPDATE outbox SET created_at='2020-01-01T00:00:00.000Z'"))
    with pytest.raises(OutboxFull) as err:
        services.db.write(lambda c: append_event(c, "test.new", {}))
    assert err.value.extra == {"reason": "age"}


def _totals_match_rows(services: Station) -> bool:
    return services.db.read(lambda c: tuple(c.execute("SELECT pending_count, pending_bytes FROM outbox_totals")
                                            .fetchone()) == tuple(c.execute(
        "SELECT count(*), coalesce(sum(size),0) FROM outbox WHERE state != 'confirmed'").fetchone()))


def test_replays_and_confirmations_in_any_order_keep_the_totals_exact(services: Station) -> None:
    from agent.store.outbox import mark_confirmed, mark_delivered, reopen_range

    for i in range(10):
        services.db.write(lambda c, i=i: append_event(c, "test.e", {"i": i}))
    ids = services.db.read(lambda c: [r[0] for r in c.execute("SELECT id FROM outbox ORDER BY seq")])
    at = "2026-01-01T00:00:00.000Z"
    services.db.write(lambda c: mark_confirmed(c, ids[5:], at))  # acked before any PUBACK was recorded
    services.db.write(lambda c: mark_delivered(c, list(range(1, 6)), at))
    services.db.write(lambda c: reopen_range(c, 1, 10))  # overlapping replays, twice
    services.db.write(lambda c: reopen_range(c, 3, 8))
    assert _totals_match_rows(services)
    services.db.write(lambda c: mark_confirmed(c, ids, at))
    assert _totals_match_rows(services)
    assert services.db.read(lambda c: c.execute("SELECT pending_count, pending_bytes FROM outbox_totals").fetchone()[:]) == (0, 0)


def test_replay_reports_events_that_were_pruned(services: Station) -> None:
    from agent.store.outbox import mark_confirmed, prune_confirmed, reopen_range

    for i in range(6):
        services.db.write(lambda c, i=i: append_event(c, "test.e", {"i": i}))
    ids = services.db.read(lambda c: [r[0] for r in c.execute("SELECT id FROM outbox ORDER BY seq")])
    services.db.write(lambda c: mark_confirmed(c, ids[2:4], "2020-01-01T00:00:00.000Z"))  # seq 3, 4: old
    services.db.write(lambda c: mark_confirmed(c, ids[:2], "2030-01-01T00:00:00.000Z"))  # seq 1, 2: recent
    services.db.write(lambda c: prune_confirmed(c, "2025-01-01T00:00:00.000Z"))
    result = services.db.write(lambda c: reopen_range(c, 1, 100))
    assert result == {"reopened": 2, "stored": 4, "expected": 6}  # seq 3 and 4 are gone


def test_replayed_old_events_do_not_trip_the_age_budget(services: Station) -> None:
    from agent.store.outbox import mark_confirmed, reopen_range

    services.db.write(lambda c: append_event(c, "test.old", {}))
    services.db.write(lambda c: c.execute("UPDATE outbox SET created_at='2020-01-01T00:00:00.000Z'"))
    event_id = services.db.read(lambda c: c.execute("SELECT id FROM outbox").fetchone()[0])
    services.db.write(lambda c: mark_confirmed(c, [event_id], "2026-01-01T00:00:00.000Z"))
    services.db.write(lambda c: configure_budget(c, None, 3600))
    services.db.write(lambda c: reopen_range(c, 1, 1))
    services.db.write(lambda c: append_event(c, "test.new", {}))  # accepted: the old one was confirmed once


def test_document_identity_migration_merges_keys_of_existing_rows(tmp_path: Path) -> None:
    """Rows stored before core_007 (CUIL as its own type, zero-padded RUT) get the new lookup keys."""
    migrations = list(MIGRATIONS)
    upto = [m for m in migrations if m[0] < "core_007"]
    db = Database(tmp_path / "agent.db", upto)
    stamp = "2026-01-01T00:00:00.000Z"
    rows = [("a", "AR", "CUIL", "20267565393"), ("b", "CL", "RUT", "012345674"), ("c", "CL", "RUT", "123456785")]
    db.write(lambda c: c.executemany(
        "INSERT INTO customers(id, doc_country, doc_type, doc_number, kind, search_name, data, version, created_at,"
        " updated_at) VALUES (?,?,?,?,'natural','',json_object('document', json_object('number', ?)),1,?,?)",
        [(i, country, t, n, n, stamp, stamp) for i, country, t, n in rows]))
    assert apply_migrations(db, migrations)[0] == "core_007_document_identity"
    got = db.read(lambda c: [tuple(r) for r in c.execute(
        "SELECT id, doc_type, doc_number, json_extract(data, '$.document.number') FROM customers ORDER BY id")])
    db.close()
    assert got == [("a", "CUIT", "20267565393", "20267565393"), ("b", "RUT", "12345674", "12345674"),
                   ("c", "RUT", "123456785", "123456785")]


def test_search_by_a_bare_number_or_loyalty_id_uses_an_index(services: Station) -> None:
    from agent.customers.service import SEARCH_BY_NUMBER

    plan = services.db.read(lambda c: " ".join(r[3] for r in c.execute(
        "EXPLAIN QUERY PLAN " + SEARCH_BY_NUMBER, ("1", "1", "X", 20))))
    assert "SCAN customers" not in plan and "customers_doc_number" in plan, plan


def test_a_name_shared_by_many_is_listed_unranked_and_a_rare_one_ranked(services: Station,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranking scores every match (seconds for a common surname at 1,000,000 customers), so only
    a narrow query is ranked; a broad one lists the first matches in enrollment order."""
    from agent.customers import service

    monkeypatch.setattr(service, "RANKED_MATCHES_MAX", 3)
    numbers = ["11111111-1", "22222222-2", "33333333-3", "44444444-4"]
    # The first enrolled has the longest name: bm25 ranks the short ones first.
    names = [("Ana", "Rojas Rojas Soto Soto"), ("Bea", "Rojas"), ("Eva", "Rojas"), ("Ema", "Rojas")]
    for number, (first, surname) in zip(numbers, names):
        services.customers.create(CustomerCreate.model_validate(
            {"document": {"country": "CL", "type": "RUT", "number": number}, "first_name": first,
             "first_surname": surname, "phones": [], "consents": {}}), "test")
    broad = [item.name for item in services.customers.search("rojas", limit=2)]
    assert broad == ["Ana Rojas Rojas Soto Soto", "Bea Rojas"]  # 4 matches > 3: enrollment order
    narrow = [item.name for item in services.customers.search("soto", limit=2)]
    assert narrow == ["Ana Rojas Rojas Soto Soto"]
    ranked = [item.name for item in services.customers.search("rojas e", limit=3)]  # Eva, Ema (and Ana? no e)
    assert sorted(ranked) == ["Ema Rojas", "Eva Rojas"]
    monkeypatch.setattr(service, "RANKED_MATCHES_MAX", 10)
    assert [item.name for item in services.customers.search("rojas", limit=4)][-1] == "Ana Rojas Rojas Soto Soto"


def test_searches_leave_the_event_loop_once_the_registry_is_big(services: Station,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from agent.customers import service

    monkeypatch.setattr(service, "CHEAP_SEARCH_MAX_CUSTOMERS", 0)
    assert services.customers.search_is_cheap()  # empty
    services.customers.create(CustomerCreate.model_validate(MARIA), "test")
    assert services.customers.search_is_cheap()  # the size is looked at again only after a while
    monkeypatch.setattr(service, "_SIZE_RECHECK_S", 0.0)
    assert not services.customers.search_is_cheap()


def test_a_replay_releases_an_event_set_aside_as_too_large(services: Station) -> None:
    from agent.store import outbox

    seq = services.db.write(lambda c: (append_event(c, "test.huge", {"n": 1}),
                                       c.execute("SELECT max(seq) FROM outbox").fetchone()[0])[1])
    assert services.db.write(lambda c: outbox.set_aside(c, seq, "2026-01-01T00:00:00Z"))
    assert not services.db.write(lambda c: outbox.set_aside(c, seq, "2026-01-01T00:00:01Z"))  # once
    assert services.db.read(outbox.set_aside_seqs) == [seq]
    services.db.write(lambda c: outbox.reopen_range(c, seq, seq))
    assert services.db.read(outbox.set_aside_seqs) == []
