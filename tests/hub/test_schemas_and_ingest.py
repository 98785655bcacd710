"""Event schemas against real agent messages, and the ingest transaction against a real
PostgreSQL (no broker: ``hub.ingest.ingest`` is called with the bytes a station sends)."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from hub.config import DEFAULT_SCHEMAS
from hub.ingest import ingest, loads, parse_messages
from hub.schemas import EventSchemas, schema_file_for
from tests.hub.agent_events import produce_all
from tests.hub.conftest import ROOT, needs_services
from tests.loyalty_fixtures import STATION

SCHEMAS = EventSchemas(DEFAULT_SCHEMAS)
TOPIC = f"loyalty/v1/stations/{STATION}/events"


@pytest.fixture(scope="module")
def real_batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return produce_all(tmp_path_factory.mktemp("station"))


def emitted_types() -> set[str]:
    found: set[str] = set()
    for source in (ROOT / "agent").rglob("*.py"):
        found |= set(re.findall(r'append_event\(\s*\w+,\s*"([a-z_.]+)"', source.read_text(encoding="utf-8")))
    return found


def test_every_emitted_type_has_a_schema_and_a_real_message(real_batch: dict[str, Any]) -> None:
    emitted = emitted_types()
    assert len(emitted) >= 21, emitted
    missing = sorted(t for t in emitted if not (DEFAULT_SCHEMAS / schema_file_for(t)).exists())
    assert not missing, f"no payload schema for {missing}"
    produced = {e["type"] for e in real_batch["events"]}
    assert produced == emitted, f"not produced by the fixture: {sorted(emitted - produced)}"


def test_real_messages_validate_event_by_event(real_batch: dict[str, Any]) -> None:
    assert SCHEMAS.batch_problem(real_batch) is None
    for event in real_batch["events"]:
        assert SCHEMAS.check_event(event) is None, (event["type"], SCHEMAS.check_event(event))


@pytest.mark.parametrize(("etype", "field", "bad"), [
    ("points.earned", "points", "lots"),
    ("points.earned", "lines", []),
    ("card.issued", "role", "owner"),
    ("points.reversed", "points", 5),
    ("reward.stock_movement", "redemption_id", None),
    ("account.created", "is_fleet", "no"),
    ("attendant.locked_out", "locked_until", "tomorrow"),
    ("partner.accrual", "miles", -1),
    ("points.earned", "identified_by", "swipe"),
    ("points.reversed", "customer_id", 7),
    ("reward.stock_counted", "counted", -1),
    ("reward.replenishment_requested", "lines", []),
    ("reward.requested", "slip", None),
    ("pins.key_changed", "public_key", "not a key"),
    ("station.pin_paused", "paused_until", "soon"),
])
def test_schemas_are_not_rubber_stamps(real_batch: dict[str, Any], etype: str, field: str, bad: Any) -> None:
    event = copy.deepcopy(next(e for e in real_batch["events"] if e["type"] == etype
                               and (etype != "reward.stock_movement" or e["payload"]["kind"] == "grant")))
    event["payload"][field] = bad
    refusal = SCHEMAS.check_event(event)
    assert refusal is not None and refusal.reason == "invalid_payload" and field in refusal.detail


def test_a_transfer_out_must_take_stock_with_a_document(real_batch: dict[str, Any]) -> None:
    transfer = next(e for e in real_batch["events"] if e["type"] == "reward.stock_movement"
                    and e["payload"]["kind"] == "transfer_out")
    assert SCHEMAS.check_event(transfer) is None
    for change in ({"quantity": 2}, {"document": None}, {"redemption_id": transfer["id"]}):
        bad = copy.deepcopy(transfer)
        bad["payload"].update(change)
        assert SCHEMAS.check_event(bad) is not None, change


def test_a_sale_by_document_names_its_customer(real_batch: dict[str, Any]) -> None:
    by_document = [e for e in real_batch["events"] if e["type"] == "points.earned"
                   and e["payload"]["identified_by"] == "document"]
    assert len(by_document) == 1 and by_document[0]["payload"]["card_number"] is None
    bad = copy.deepcopy(by_document[0])
    del bad["payload"]["customer_id"]
    refusal = SCHEMAS.check_event(bad)
    assert refusal is not None and "customer_id" in refusal.detail
    # A card sale from an agent older than the sale by document has neither field: still valid.
    older = copy.deepcopy(next(e for e in real_batch["events"] if e["type"] == "points.earned"
                               and e["payload"]["identified_by"] == "card"))
    del older["payload"]["customer_id"], older["payload"]["identified_by"]
    assert SCHEMAS.check_event(older) is None


def test_an_envelope_time_must_be_a_time(real_batch: dict[str, Any]) -> None:
    # "format": "date-time" alone is an annotation in draft 2020-12 (not checked): the envelope
    # carries the payloads' datetime pattern too, so "mañana" or a tab never reaches a projection.
    for created_at in ("mañana", "2026-12-02\t10:00", "2026-12-02 10:00:00"):
        event = copy.deepcopy(real_batch["events"][0])
        event["created_at"] = created_at
        refusal = SCHEMAS.check_event(event)
        assert refusal is not None and refusal.reason == "invalid_envelope", created_at
    event = copy.deepcopy(real_batch["events"][0])
    event["created_at"] = "2026-12-02T10:00:00-05:00"  # another agent's offset: a time all the same
    assert SCHEMAS.check_event(event) is None


def test_an_added_field_is_refused(real_batch: dict[str, Any]) -> None:
    # The customer payload schemas predate the hub and stay open; every other payload is closed,
    # so a field the agent starts sending is noticed here (a schema_version bump) before production.
    for event in (e for e in real_batch["events"] if not e["type"].startswith("customer.")):
        changed = copy.deepcopy(event)
        changed["payload"]["surprise"] = 1
        assert SCHEMAS.check_event(changed) is not None, event["type"]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20))
def test_arbitrary_json_never_crashes_the_parser(value: Any) -> None:
    from hub.ingest import parse_messages

    unreadable: list[Any] = []
    for body in (value, {"station_id": STATION, "events": [value]}, {"station_id": STATION, "events": value}):
        parsed = parse_messages([(TOPIC, json.dumps(body).encode())], SCHEMAS, unreadable)
        for station in parsed.values():
            assert all(SCHEMAS.check_event(e) is None for e in station.events.values())


# ---- ingest against PostgreSQL --------------------------------------------------------------

pg = needs_services


def _message(events: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    return [(TOPIC, json.dumps({"station_id": STATION, "events": events}).encode())]


@pg
def test_ingest_projects_every_type_and_is_idempotent(db: psycopg.Connection, real_batch: dict[str, Any]) -> None:
    events = real_batch["events"]
    first = ingest(db, _message(events), SCHEMAS)
    assert first.stored == len(events) and first.applied == len(events) and first.quarantined == 0
    assert sorted(first.acks[STATION]) == sorted(e["id"] for e in events)
    again = ingest(db, _message(events), SCHEMAS)
    assert again.stored == 0 and again.duplicates == len(events) and sorted(again.acks[STATION]) == sorted(first.acks[STATION])
    station = db.execute("SELECT contiguous_seq, max_seq_seen, gap_since, clock_synced IS NOT NULL FROM stations"
                         " WHERE station_id = %s", (STATION,)).fetchone()
    assert station == (len(events), len(events), None, True)
    # Balance: the ledger's sum, counted once despite the resend.
    points = sum(e["payload"]["points"] for e in events if e["type"].startswith("points.")
                 and e["payload"]["account_id"] == "A1")
    assert db.execute("SELECT balance FROM accounts WHERE account_id = 'A1'").fetchone()[0] == points
    assert db.execute("SELECT count(*) FROM point_movements").fetchone()[0] == sum(
        1 for e in events if e["type"].startswith("points."))
    assert db.execute("SELECT state, replaced_by FROM cards WHERE card_number = 'C1000'").fetchone() == ("replaced", "NEW-2")
    assert db.execute("SELECT state, account_id FROM cards WHERE card_number = 'NEW-2'").fetchone() == ("issued", "A1")
    assert db.execute("SELECT version FROM customers").fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM customer_history").fetchone()[0] == 2
    by_group = dict(db.execute("SELECT article_group, points FROM points_by_station_group").fetchall())
    assert set(by_group) == {"FUEL", "SHOP"}
    assert db.execute("SELECT count(*) FROM reward_requests").fetchone()[0] == 2
    assert db.execute("SELECT stock, low FROM station_stock WHERE reward_id = 'MUG'").fetchone() == (1, True)
    # Receipt +2, shipment receipt +3, transfer out -2, count 3 -> 2 (one broken), grant -1.
    # In the station's order (its seq): two UUIDv7 ids made in one millisecond need not sort in order.
    assert db.execute("SELECT m.kind, m.quantity, m.stock_after FROM stock_movements m"
                      " JOIN events e USING (event_id) WHERE m.reward_id = 'MUG'"
                      " ORDER BY e.seq").fetchall() == [("receipt", 2, 2), ("shipment_receipt", 3, 5),
                                                          ("transfer_out", -2, 3), ("count", -1, 2), ("grant", -1, 1)]
    maria = next(e["payload"]["customer"]["id"] for e in events if e["type"] == "customer.created")
    assert db.execute("SELECT customer_id, identified_by, card_number, attendant_id FROM sales"
                      " WHERE receipt_number = '0999'").fetchone() == (maria, "document", None, None)
    assert db.execute("SELECT lines FROM station_replenishments").fetchall() == [([{"reward_id": "MUG", "quantity": 1}],)]
    assert db.execute("SELECT count(*) FROM partner_accruals").fetchone()[0] >= 1
    alerts = {r[0] for r in db.execute("SELECT type FROM alerts")}
    assert {"reward_stock_low", "attendant_locked_out", "pin_key_changed", "station_pin_paused"} <= alerts


@pg
def test_out_of_order_events_park_until_the_hole_fills(db: psycopg.Connection, real_batch: dict[str, Any]) -> None:
    events = real_batch["events"][:6]
    ingest(db, _message(events[3:]), SCHEMAS)
    row = db.execute("SELECT contiguous_seq, max_seq_seen, gap_since IS NOT NULL FROM stations").fetchone()
    assert row == (0, 6, True)
    assert db.execute("SELECT count(*) FROM customers").fetchone()[0] == 0  # parked, not applied
    ingest(db, _message(events[:3]), SCHEMAS)
    assert db.execute("SELECT contiguous_seq, gap_since FROM stations").fetchone() == (6, None)
    assert db.execute("SELECT version FROM customers").fetchone()[0] == 2


@pg
def test_a_refused_event_is_quarantined_acked_alerted_and_blocks_nothing(db: psycopg.Connection,
                                                                          real_batch: dict[str, Any]) -> None:
    events = copy.deepcopy(real_batch["events"][:8])
    bad = next(e for e in events if e["type"] == "points.earned")
    bad["payload"]["points"] = "lots"
    outcome = ingest(db, _message(events), SCHEMAS)
    assert outcome.quarantined == 1 and bad["id"] in outcome.acks[STATION]
    assert db.execute("SELECT contiguous_seq FROM stations").fetchone()[0] == 8  # later events applied
    row = db.execute("SELECT event_id, reason, seq FROM quarantine").fetchone()
    assert row == (bad["id"], "invalid_payload", bad["seq"])
    alert = db.execute("SELECT type, detail FROM alerts WHERE type = 'event_quarantined'").fetchone()
    assert alert[1]["event_id"] == bad["id"] and "lots" not in json.dumps(alert[1])
    good_sales = sorted(e["payload"]["sale_id"] for e in events if e["type"] == "points.earned" and e is not bad)
    assert good_sales  # a later sale of the same message is booked; the refused one is not
    assert sorted(r[0] for r in db.execute("SELECT sale_id FROM sales")) == good_sales


@pg
def test_unreadable_messages_are_quarantined_whole(db: psycopg.Connection) -> None:
    outcome = ingest(db, [(TOPIC, b"{not json"), (TOPIC, b'{"station_id": "other", "events": [{}]}')], SCHEMAS)
    assert outcome.quarantined == 2 and not outcome.acks
    assert [r[0] for r in db.execute("SELECT reason FROM quarantine ORDER BY quarantine_id")] == [
        "invalid_json", "invalid_batch"]
    # Stations are locked by their topics before parsing: a topic no batch could match gets no row.
    bad_topic = "loyalty/v1/stations/no such station!/events"
    ingest(db, [(bad_topic, b'{"station_id": "no such station!", "events": [{}]}')], SCHEMAS)
    assert db.execute("SELECT count(*) FROM quarantine WHERE station_id = 'no such station!'").fetchone()[0] == 1
    assert [r[0] for r in db.execute("SELECT station_id FROM stations")] == [STATION]


@pg
def test_reinstalled_station_starts_a_new_epoch(db: psycopg.Connection, real_batch: dict[str, Any]) -> None:
    events = real_batch["events"][:3]
    ingest(db, _message(events), SCHEMAS)
    fresh = copy.deepcopy(events[:1])
    fresh[0]["id"] = fresh[0]["id"][:-4] + "ffff"
    fresh[0]["payload"]["customer"]["id"] = fresh[0]["payload"]["customer"]["id"][:-4] + "eeee"
    ingest(db, _message(fresh), SCHEMAS)
    assert db.execute("SELECT epoch, contiguous_seq FROM stations").fetchone() == (2, 1)
    assert db.execute("SELECT count(*) FROM customers").fetchone()[0] == 2


def _ledger(db: psycopg.Connection) -> tuple[int, int, int, int]:
    return db.execute("SELECT (SELECT balance FROM accounts), (SELECT count(*) FROM point_movements),"
                      " (SELECT count(*) FROM sales), (SELECT count(*) FROM sale_lines)").fetchone()


@pg
def test_a_group_with_resends_goes_through_staging_then_back_to_copy(db: psycopg.Connection) -> None:
    from bench.fleet_station import LightStation

    station = LightStation(STATION, None)  # type: ignore[arg-type]
    first = [station.new_event() for _ in range(3)]
    ingest(db, _message(first), SCHEMAS)
    assert not getattr(db, "_hub_resends", False)  # no resend: COPY straight into events
    more = [station.new_event() for _ in range(2)]
    outcome = ingest(db, _message(first[1:] + more), SCHEMAS)
    assert outcome.stored == 2 and outcome.duplicates == 2
    assert sorted(outcome.acks[STATION]) == sorted(e["id"] for e in first[1:] + more)
    assert getattr(db, "_hub_resends", False)  # the COPY failed on the key and was rolled back
    assert _ledger(db) == (50, 5, 5, 5)
    assert db.execute("SELECT contiguous_seq FROM stations").fetchone()[0] == 5
    ingest(db, _message([station.new_event()]), SCHEMAS)  # staging again, finds no resend
    assert not getattr(db, "_hub_resends", False)
    assert _ledger(db) == (60, 6, 6, 6)


@pg
def test_a_sale_applied_twice_is_booked_once(db: psycopg.Connection) -> None:
    from bench.fleet_station import LightStation

    station = LightStation(STATION, None)  # type: ignore[arg-type]
    ingest(db, _message([station.new_event() for _ in range(3)]), SCHEMAS)
    first_payload = db.execute("SELECT payload FROM events ORDER BY seq LIMIT 1").fetchone()[0]
    again = station.new_event()  # a new event carrying a movement the hub has booked already
    again["payload"] = first_payload
    fresh = station.new_event()
    ingest(db, _message([again, fresh]), SCHEMAS)
    assert db.execute("SELECT contiguous_seq FROM stations").fetchone()[0] == 5
    # The run's COPY failed on the movement's key: the slow path books the fresh sale only.
    assert _ledger(db) == (40, 4, 4, 4)
    assert db.execute("SELECT count(*) FROM sales WHERE event_id = %s", (fresh["id"],)).fetchone()[0] == 1


@pg
def test_nan_is_not_json_and_big_integers_are_not_rounded(db: psycopg.Connection, real_batch: dict[str, Any]) -> None:
    unreadable: list[tuple[str | None, str, str, str]] = []
    assert parse_messages([(TOPIC, b'{"station_id": "x", "events": [{"seq": NaN}]}')], SCHEMAS, unreadable) == {}
    assert unreadable[0][1] == "invalid_json"
    event = copy.deepcopy(next(e for e in real_batch["events"] if e["type"] == "customer.updated"))
    event["payload"]["changes"] = [{"field": "x", "old": 2**70, "new": 2**70 + 1}]
    ingest(db, _message([event]), SCHEMAS)
    stored = db.execute("SELECT payload->'changes'->0->>'new' FROM events").fetchone()
    assert stored == (str(2**70 + 1),)  # exact, not a float


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-2**80, max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=20)


def _outcome(raw: bytes) -> str:
    try:
        return "ok " + json.dumps(loads(raw))  # dumps tells 1 from 1.0, -0.0 from 0 and writes big ints exactly
    except ValueError as exc:
        return f"{type(exc).__name__} {exc}"


def _json_outcome(raw: bytes) -> str:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")
    try:
        return "ok " + json.dumps(json.loads(raw, parse_constant=refuse))
    except ValueError as exc:
        return f"{type(exc).__name__} {exc}"


@settings(max_examples=300, deadline=None)
@given(value=_JSON, spaced=st.sampled_from([None, (", ", ": "), (" ,\n", " :\t")]))
def test_loads_reads_any_json_exactly_as_json_does(value: Any, spaced: tuple[str, str] | None) -> None:
    raw = json.dumps(value, separators=spaced, ensure_ascii=False).encode()
    assert _outcome(raw) == _json_outcome(raw)


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(max_size=40) | st.sampled_from([
    b"[18446744073709551616]", b"[-9223372036854775809, 1]", b'{"a": -  1}', b'{"a":\r\n 123456789012345678901}',
    b"[1e400]", b"[NaN]", b"[-Infinity]", b'\xef\xbb\xbf{"a": 1}', b'["\\ud800"]', b'{"a": 1, "a": 2}', b"[1,]",
    b'["1234567890123456789012"]', b'"x"', b"\xff", b" -9223372036854775809", b"123456789012345678901"]))
def test_loads_refuses_or_accepts_as_json_does(raw: bytes) -> None:
    assert _outcome(raw) == _json_outcome(raw)


@pg
def test_movements_still_need_their_account_checked_per_statement(db: psycopg.Connection) -> None:
    """Migration 009 replaced the foreign key by statement triggers: the same rule, every way round."""
    from bench.fleet_station import LightStation

    station = LightStation(STATION, None)  # type: ignore[arg-type]
    ingest(db, _message([station.new_event() for _ in range(3)]), SCHEMAS)
    account = db.execute("SELECT account_id FROM point_movements LIMIT 1").fetchone()[0]
    db.execute("INSERT INTO accounts(account_id) VALUES ('LA-empty')")
    row = ("m-x", "LA-nobody", STATION, 1, "earn", 5, None, "s-x", "2026-01-01T00:00:00Z", "e-x")
    columns = ("movement_id, account_id, station_id, ledger_seq, kind, points, card_number, reference_id,"
               " occurred_at, event_id")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute(f"INSERT INTO point_movements({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", row)
    with pytest.raises(psycopg.errors.ForeignKeyViolation), db.cursor().copy(
            f"COPY point_movements ({columns}) FROM STDIN") as copy:
        copy.write_row((*row[:1], account, *row[2:]))  # one good row does not carry a bad one
        copy.write_row(("m-y", *row[1:]))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("UPDATE point_movements SET account_id = 'LA-nobody' WHERE account_id = %s", (account,))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("DELETE FROM accounts WHERE account_id = %s", (account,))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("UPDATE accounts SET account_id = 'LA-renamed' WHERE account_id = %s", (account,))
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        db.execute("TRUNCATE accounts CASCADE")
    assert db.execute("SELECT count(*) FROM point_movements WHERE account_id = %s", (account,)).fetchone()[0] == 3
    db.execute(f"INSERT INTO point_movements({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
               ("m-z", "LA-empty", *row[2:]))  # an existing account is accepted
    db.execute("DELETE FROM point_movements WHERE movement_id = 'm-z'")
    db.execute("DELETE FROM accounts WHERE account_id = 'LA-empty'")  # no movements left: may go
    db.execute("TRUNCATE accounts, point_movements CASCADE")  # together, as the benchmark does


@pg
def test_an_account_cannot_go_while_a_movement_for_it_is_uncommitted(db: psycopg.Connection, database: str) -> None:
    """The statement check locks the accounts FOR KEY SHARE, as the foreign key did."""
    db.execute("INSERT INTO accounts(account_id) VALUES ('LA-1')")
    with psycopg.connect(database) as writer, psycopg.connect(database, autocommit=True) as other:
        writer.execute("INSERT INTO point_movements(movement_id, account_id, station_id, kind, points, occurred_at,"
                       " event_id) VALUES ('m-1', 'LA-1', 's', 'earn', 5, '2026-01-01T00:00:00Z', 'e-1')")
        other.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):  # waits for the writer, as with the key
            other.execute("DELETE FROM accounts WHERE account_id = 'LA-1'")
        writer.commit()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):  # then sees its movement
            other.execute("DELETE FROM accounts WHERE account_id = 'LA-1'")


@pg
def test_projection_rows_with_copy_special_characters_are_stored_exactly(db: psycopg.Connection) -> None:
    """The projections' COPY text is written unescaped only when its counts check out
    (hub.earned_text): a value with a backslash or a tab takes the escaping path, stored as sent."""
    from bench.fleet_station import LightStation

    station = LightStation(STATION, None)  # type: ignore[arg-type]
    plain, odd, none = station.new_event(), station.new_event(), station.new_event()
    odd["payload"]["program_version"] = "v1\\N\tcon tab"  # any string: a backslash-N, as NULL is written, and a tab
    none["payload"]["program_version"] = None
    ingest(db, _message([plain, none]), SCHEMAS)  # unescaped text, with a NULL
    ingest(db, _message([odd]), SCHEMAS)  # the check refuses the text: write_row escapes
    versions = dict(db.execute("SELECT event_id, program_version FROM sales").fetchall())
    assert versions == {plain["id"]: "bench", odd["id"]: "v1\\N\tcon tab", none["id"]: None}
    assert _ledger(db) == (30, 3, 3, 3)


@pg
def test_events_with_copy_special_characters_are_stored_exactly(db: psycopg.Connection) -> None:
    """``events`` rows go as COPY text with backslashes doubled and are written unescaped only
    when their tab and newline counts check out (hub.staging): JSON escapes in a payload and a
    tab in an envelope's value are stored as sent."""
    from bench.fleet_station import LightStation

    station = LightStation(STATION, None)  # type: ignore[arg-type]
    escaped, odd = station.new_event(), station.new_event()
    escaped["payload"]["program_version"] = 'v1 \\N "comillas" \\ \t tab\nlínea 😀'  # JSON writes \\, \" and \t
    odd["created_at"] = "2026-12-02\t10:00"  # the envelope's date-time is not a format check: a tab in a column
    ingest(db, _message([escaped]), SCHEMAS)  # the checked text
    ingest(db, _message([odd]), SCHEMAS)  # the check refuses the text: write_row escapes
    stored = dict(db.execute("SELECT event_id, payload FROM events").fetchall())
    assert stored[escaped["id"]] == escaped["payload"]
    assert db.execute("SELECT created_at FROM events WHERE event_id = %s", (odd["id"],)).fetchone()[0] == (
        "2026-12-02\t10:00")
