"""The worker's own decisions, in-process against a real PostgreSQL (no broker connection is
made: ``Worker._ingest`` is what the ingest loop calls for each group)."""
from __future__ import annotations

import json

import psycopg

from bench.fleet_station import LightStation
from hub.config import load_settings
from hub.worker import Inbound, Worker, whole_numbers
from tests.hub.conftest import needs_services

pytestmark = needs_services


def test_a_message_the_database_refuses_is_quarantined_and_the_group_goes_on(database: str) -> None:
    worker = Worker(load_settings(None, {"mqtt": {"url": "mqtt://127.0.0.1:1"}, "database": {"url": database}},
                                  environ={}), "t")
    good, bad = LightStation("st-good", None), LightStation("st-bad", None)  # type: ignore[arg-type]
    poison = bad.new_event()
    poison["payload"]["ledger_seq"] = 2**70  # valid JSON Schema integer, beyond PostgreSQL's bigint
    messages = [Inbound(1, 1, 1, "loyalty/v1/stations/st-good/events",
                        json.dumps({"station_id": "st-good", "events": [good.new_event()]}).encode()),
                Inbound(1, 2, 1, "loyalty/v1/stations/st-bad/events",
                        json.dumps({"station_id": "st-bad", "events": [poison]}).encode())]
    outcome = worker._ingest(messages)
    assert set(outcome.acks) == {"st-good"}  # the refused message is not acknowledged: the station keeps it
    with psycopg.connect(database, autocommit=True) as conn:
        assert conn.execute("SELECT station_id FROM events").fetchall() == [("st-good",)]
        reason, detail = conn.execute("SELECT reason, detail FROM quarantine").fetchone()
        assert reason == "processing_error" and "NumericValueOutOfRange" in detail
        assert conn.execute("SELECT type FROM alerts").fetchall() == [("message_unprocessable",)]
    worker.client.loop_stop()


def test_whole_numbers_written_with_a_fraction_are_stored_as_the_integers_they_are(database: str) -> None:
    # JSON Schema counts 1.0 as an integer, PostgreSQL's integer columns do not read "1.0": the
    # message was quarantined, never acknowledged, and sent again by the station for ever.
    worker = Worker(load_settings(None, {"mqtt": {"url": "mqtt://127.0.0.1:1"}, "database": {"url": database}},
                                  environ={}), "t")
    station = LightStation("st-floats", None)  # type: ignore[arg-type]
    events = [station.new_event(), station.new_event()]
    raw = json.dumps({"station_id": "st-floats", "events": events})
    raw = raw.replace('"schema_version": 1,', '"schema_version": 1.0,').replace('"points": 10,', '"points": 1e1,')
    assert raw.count("1.0,") == 2 and "1e1" in raw
    outcome = worker._ingest([Inbound(1, 1, 1, "loyalty/v1/stations/st-floats/events", raw.encode())])
    assert sorted(outcome.acks["st-floats"]) == sorted(e["id"] for e in events)
    with psycopg.connect(database, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
        assert conn.execute("SELECT sum(points) FROM sales").fetchone()[0] == 20
        assert conn.execute("SELECT contiguous_seq FROM stations WHERE station_id = 'st-floats'").fetchone()[0] == 2
    worker.client.loop_stop()


def test_whole_numbers_leaves_other_messages_alone() -> None:
    assert whole_numbers(b'{"a": 1, "b": 2.5, "c": "1.0"}') is None  # nothing whole written with a fraction
    assert whole_numbers(b"{not json") is None
    assert whole_numbers(b'{"a": 1.0, "b": "\\ud800"}') is None  # a lone surrogate: not for UTF-8
    assert json.loads(whole_numbers(b'{"a": 1.0, "b": [2.5, -3e2], "c": "1.0"}') or b"") == {
        "a": 1, "b": [2.5, -300], "c": "1.0"}


def _worker(database: str = "postgresql://127.0.0.1:1/none", **ingest: int) -> Worker:
    return Worker(load_settings(None, {"mqtt": {"url": "mqtt://127.0.0.1:1"}, "database": {"url": database},
                                       "ingest": ingest}, environ={}), "t")


def test_a_station_always_goes_to_the_same_lane_and_stations_spread_over_the_lanes() -> None:
    worker = _worker(connections=2)
    topics = [f"loyalty/v1/stations/st-{i:03d}/{leaf}" for i in range(50) for leaf in ("events", "status")]
    lanes = {t: worker.lanes.index(worker.lane_of(t)) for t in topics}
    # Every message of one station (events or not) in one lane: its groups never wait for another lane's lock.
    assert all(lanes[f"loyalty/v1/stations/st-{i:03d}/events"] == lanes[f"loyalty/v1/stations/st-{i:03d}/status"]
               for i in range(50))
    assert set(lanes.values()) == {0, 1}
    worker.client.loop_stop()


def test_a_group_stops_at_its_byte_budget_and_takes_the_rest_next() -> None:
    worker = _worker(connections=1, group_max_bytes=2500, group_wait_ms=0)
    lane = worker.lanes[0]
    for mid in range(10):
        lane.inbox.put(Inbound(1, mid, 1, "loyalty/v1/stations/st-1/events", b"x" * 1000))
    sizes = [len(worker._next_group(lane)) for _ in range(4)]
    assert sizes == [3, 3, 3, 1]  # a group closes once it holds the budget (one message may pass it)
    worker.client.loop_stop()
