"""The complete directory delta for a new station, paged under the document size limit, over a
real broker and PostgreSQL: every page is a signed, valid delta of its own."""
from __future__ import annotations

import json
import threading
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from agent.queue.signed_config import ConfigVerifier
from hub.directory import publish_full_to_new_stations
from tests.conftest import wait_until
from tests.fakes.mosquitto import Mosquitto
from tests.hub.conftest import needs_services
from tests.signing import HEAD_OFFICE_KEY

pytestmark = needs_services
TOPIC = "loyalty/v1/stations/st-new/config/directory"


def _client(port: int, name: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_a_full_delta_over_the_size_limit_goes_in_valid_pages(db: psycopg.Connection, broker: Mosquitto) -> None:
    db.execute("INSERT INTO stations(station_id) VALUES ('st-new')")
    db.execute("INSERT INTO accounts(account_id, station_id) SELECT 'A-' || lpad(i::text, 4, '0'), 'st-old'"
               " FROM generate_series(1, 120) i")
    db.execute("INSERT INTO cards(card_number, account_id, role, state, station_id)"
               " SELECT 'C-' || substr(account_id, 3), account_id, 'primary', 'issued', 'st-old' FROM accounts")
    received: list[bytes] = []
    lock = threading.Lock()
    station = _client(broker.port, "loyalty-agent-st-new")

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with lock:
            received.append(bytes(message.payload))

    station.on_message = on_message
    station.subscribe(TOPIC, 1)
    hub = _client(broker.port, "hub-leader-test")
    try:
        assert wait_until(lambda: station.is_connected() and hub.is_connected(), 10)
        publish_full_to_new_stations(db, hub, HEAD_OFFICE_KEY, max_movements=5, max_page_bytes=6000)
        assert wait_until(lambda: sum(len(json.loads(r)["payload"]["accounts"]) for r in list(received)) >= 120, 10)
    finally:
        hub.loop_stop()
        station.loop_stop()
    verifier = ConfigVerifier(HEAD_OFFICE_KEY.public_key())
    pages = [json.loads(verifier.unwrap("directory", raw)) for raw in received]
    assert len(pages) > 2 and all(len(raw) <= 6000 for raw in received)
    assert [p["seq"] for p in pages] == sorted({p["seq"] for p in pages})  # in seq order, none repeated
    accounts = [a["account_id"] for p in pages for a in p["accounts"]]
    assert sorted(accounts) == [f"A-{i:04d}" for i in range(1, 121)]
    for page in pages:  # a card only with its account: each page stands on its own
        assert {c["account_id"] for c in page["cards"]} == {a["account_id"] for a in page["accounts"]}
    assert db.execute("SELECT directory_full_sent FROM stations").fetchone()[0] is True


def test_an_account_row_carries_its_last_movements_newest_first(db: psycopg.Connection) -> None:
    from hub.directory import account_rows
    from hub.ingest import ingest
    from hub.config import DEFAULT_SCHEMAS
    from hub.schemas import EventSchemas
    from bench.fleet_station import LightStation

    stations = [LightStation(f"st-{k}", None) for k in "ab"]  # type: ignore[arg-type]
    events = {st.station_id: [st.new_event() for _ in range(8)] for st in stations}
    for st in stations:
        for i, event in enumerate(events[st.station_id]):
            event["payload"]["account_id"] = "ACC-1"
            event["payload"]["occurred_at"] = f"2026-01-01T00:00:{i:02d}.000Z"  # two movements per second
        ingest(db, [(st.topic("events"), json.dumps({"station_id": st.station_id, "events": events[st.station_id]})
                     .encode())], EventSchemas(DEFAULT_SCHEMAS))
    rows = account_rows(db, ["ACC-1", "ACC-NONE"], 5, "2026-01-02T00:00:00.000Z")
    every = sorted(((e["payload"]["occurred_at"], e["payload"]["movement_id"]) for evs in events.values() for e in evs),
                   reverse=True)
    assert [(m["occurred_at"], m["movement_id"]) for m in rows["ACC-1"]["movements"]] == every[:5]
    assert rows["ACC-1"]["snapshot"]["balance"] == 160 and "ACC-NONE" not in rows
