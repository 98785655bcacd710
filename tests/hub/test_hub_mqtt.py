"""Hub workers over a real broker, fed by a scripted station (bench/fleet_station's event
builder: the contract's envelope and a valid ``points.earned``), for what a real agent does
not do on purpose: a malformed event, a replay it cannot satisfy, and traffic right after a
worker died."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.fleet_station import LightStation
from tests.conftest import wait_until
from tests.fakes.mosquitto import Mosquitto
from tests.hub.conftest import HubProcess, needs_services

pytestmark = needs_services
STATION = "st-x"


class ScriptedStation:
    """Publishes what the test says; records acks and replay requests."""

    def __init__(self, port: int, answer_replay: dict[str, Any] | None = None) -> None:
        self.acked: set[str] = set()
        self.ack_times: dict[str, float] = {}
        self.replays: list[dict[str, Any]] = []
        self.answer_replay = answer_replay
        self.lock = threading.Lock()
        self.builder = LightStation(STATION, None)  # type: ignore[arg-type]
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"loyalty-agent-{STATION}", protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe([(f"loyalty/v1/stations/{STATION}/acks", 1), (f"loyalty/v1/stations/{STATION}/replay", 1)])
        self.client.loop_start()
        self.client.publish(f"loyalty/v1/stations/{STATION}/availability",
                            json.dumps({"state": "online", "station_id": STATION}), qos=1, retain=True)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        body = json.loads(message.payload)
        with self.lock:
            if message.topic.endswith("/acks"):
                for event_id in body["event_ids"]:
                    self.acked.add(event_id)
                    self.ack_times.setdefault(event_id, time.monotonic())
            else:
                self.replays.append(body)
                if self.answer_replay is not None:
                    client.publish(f"loyalty/v1/stations/{STATION}/replay/result",
                                   json.dumps({**self.answer_replay, "request_id": body["request_id"],
                                               "from_seq": body["from_seq"], "to_seq": body["to_seq"]}), qos=1)

    def events(self, n: int) -> list[dict[str, Any]]:
        return [self.builder.new_event() for _ in range(n)]

    def publish(self, events: list[dict[str, Any]] | bytes) -> None:
        body = events if isinstance(events, bytes) else json.dumps({"station_id": STATION, "events": events})
        self.client.publish(f"loyalty/v1/stations/{STATION}/events", body, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def station(broker: Mosquitto) -> Iterator[ScriptedStation]:
    made = ScriptedStation(broker.port, answer_replay={"status": "partial", "reopened": 0, "missing": 1,
                                                       "oldest_available_seq": 3})
    yield made
    made.close()


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _hubs(tmp_path: Path, broker: Mosquitto, database: str, hubs: list[HubProcess], *names: str) -> None:
    for name in names:
        hub = HubProcess(tmp_path, name, broker.url, database).start()
        hubs.append(hub)
        hub.wait_subscribed()


def test_a_malformed_event_is_quarantined_alerted_and_acked_without_blocking(
        tmp_path: Path, broker: Mosquitto, database: str, hubs: list[HubProcess], station: ScriptedStation) -> None:
    _hubs(tmp_path, broker, database, hubs, "w1")
    events = station.events(3)
    events[1]["payload"]["points"] = "lots"
    station.publish(events)
    station.publish(b"{this is not json")
    assert wait_until(lambda: station.acked >= {e["id"] for e in events}, 15)
    assert _rows(database, "SELECT contiguous_seq FROM stations") == [(3,)]
    assert _rows(database, "SELECT count(*) FROM point_movements") == [(2,)]  # the good ones applied
    assert sorted(_rows(database, "SELECT reason, seq FROM quarantine"), key=str) == [
        ("invalid_json", None), ("invalid_payload", 2)]
    alerts = _rows(database, "SELECT type, detail->>'reason' FROM alerts ORDER BY alert_id")
    assert sorted(alerts) == [("event_quarantined", "invalid_json"), ("event_quarantined", "invalid_payload")]


def test_a_replay_the_station_cannot_satisfy_raises_an_alert(
        tmp_path: Path, broker: Mosquitto, database: str, hubs: list[HubProcess], station: ScriptedStation) -> None:
    _hubs(tmp_path, broker, database, hubs, "w1")
    events = station.events(3)
    station.publish([events[0], events[2]])  # seq 2 never comes: pruned at the station
    assert wait_until(lambda: bool(station.replays), 15)  # after the 2 s grace period
    assert station.replays[0]["from_seq"] == 2 and station.replays[0]["to_seq"] == 2
    assert wait_until(lambda: _rows(database, "SELECT type FROM alerts") == [("replay_unsatisfied",)], 10)
    assert _rows(database, "SELECT status FROM replay_requests") == [("partial",)]
    assert _rows(database, "SELECT contiguous_seq, max_seq_seen FROM stations") == [(1, 3)]


def test_no_replay_or_alert_while_the_hub_is_behind_on_the_station(
        tmp_path: Path, broker: Mosquitto, database: str, hubs: list[HubProcess], station: ScriptedStation) -> None:
    """Events the station created 60 s before the hub reads them: the hub is working through a
    backlog, and the hole is most likely still queued behind them. With a 2 s grace the hole
    would be declared lost at 3 x grace = 6 s; while the hub is behind it must not be."""
    _hubs(tmp_path, broker, database, hubs, "w1")
    events = station.events(3)
    old = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 60))
    for event in events:
        event["created_at"] = old
    station.publish([events[0], events[2]])
    assert wait_until(lambda: station.acked >= {events[0]["id"], events[2]["id"]}, 15)
    time.sleep(8)
    assert station.replays == []
    assert _rows(database, "SELECT count(*) FROM replay_requests") == [(0,)]
    assert _rows(database, "SELECT type FROM alerts") == []
    station.publish([events[1]])  # what the backlog held: the hole fills, nothing was lost
    assert wait_until(lambda: _rows(database, "SELECT contiguous_seq FROM stations") == [(3,)], 15)


def test_a_dead_worker_parks_no_traffic(tmp_path: Path, broker: Mosquitto, database: str, hubs: list[HubProcess],
                                        station: ScriptedStation) -> None:
    """Clean sessions: once a worker is SIGKILLed the broker drops its session and routes every
    new message to the live worker. The scripted station never resends, so any message parked
    on the dead worker's session would stay unacknowledged."""
    _hubs(tmp_path, broker, database, hubs, "w1", "w2")
    warmup = station.events(10)
    for event in warmup:
        station.publish([event])
    assert wait_until(lambda: station.acked >= {e["id"] for e in warmup}, 15)
    hubs[0].kill()
    killed = time.monotonic()
    after = station.events(40)
    for event in after:
        station.publish([event])  # one message each: round-robin would give half to a parked session
    assert wait_until(lambda: station.acked >= {e["id"] for e in after}, 10), len(station.acked)
    worst = max(station.ack_times[e["id"]] for e in after) - killed
    print(f"40 messages after the SIGKILL all acknowledged within {worst * 1000:.0f} ms")
    assert _rows(database, "SELECT contiguous_seq FROM stations") == [(50,)]


def test_workers_tell_the_stations_when_they_join_and_when_they_are_lost(tmp_path: Path, broker: Mosquitto,
                                                                          database: str, hubs: list[HubProcess]) -> None:
    """``loyalty/v1/hub/consumers``: "online" once a worker's shared subscription is granted (a
    station resends what it published while nobody was subscribed), "offline" from its Last Will
    when it is SIGKILLed and from itself when it stops cleanly (a station resends what the broker
    may have routed to it). Not retained."""
    heard: list[dict[str, Any]] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="listener", protocol=mqtt.MQTTv5)
    listener.on_message = lambda c, u, m: heard.append(json.loads(m.payload))
    listener.connect("127.0.0.1", broker.port)
    listener.subscribe("loyalty/v1/hub/consumers", 1)
    listener.loop_start()
    try:
        time.sleep(0.5)
        _hubs(tmp_path, broker, database, hubs, "w1", "w2")
        assert wait_until(lambda: len(heard) == 2, 10), heard
        assert sorted((h["consumer"], h["state"]) for h in heard) == [("loyalty-hub-w1", "online"),
                                                                       ("loyalty-hub-w2", "online")]
        hubs[0].kill()
        assert wait_until(lambda: len(heard) == 3, 10), heard
        assert (heard[2]["consumer"], heard[2]["state"]) == ("loyalty-hub-w1", "offline")
        hubs[1].stop()
        assert wait_until(lambda: len(heard) == 4, 20), heard
        assert (heard[3]["consumer"], heard[3]["state"]) == ("loyalty-hub-w2", "offline")
        # Not retained: a station subscribing now hears none of it (a live delivery's retain flag
        # says nothing: the broker clears it unless Retain As Published is asked for).
        late: list[bytes] = []
        latecomer = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="latecomer", protocol=mqtt.MQTTv5)
        latecomer.on_message = lambda c, u, m: late.append(m.payload)
        latecomer.connect("127.0.0.1", broker.port)
        latecomer.subscribe("loyalty/v1/hub/consumers", 1)
        latecomer.loop_start()
        time.sleep(1.0)
        latecomer.loop_stop()
        latecomer.disconnect()
        assert late == []
    finally:
        listener.loop_stop()
        listener.disconnect()
