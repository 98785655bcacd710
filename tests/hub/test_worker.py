"""The worker's own decisions, in-process against a real PostgreSQL (no broker connection is
made: ``Worker._ingest`` is what the ingest loop calls for each group)."""
from __future__ import annotations

import json

import psycopg

from bench.fleet_station import LightStation
from hub.config import load_settings
from hub.worker import Inbound, Worker
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
