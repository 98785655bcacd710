"""A fake head office: a real MQTT client that consumes station events, dedupes them by id,
checks the per-station sequence for gaps, and acknowledges on the station's ack topic.

Switches let tests model a head office that is down (``acking = False``: receives, never
acks) or that asks for a replay.
"""
from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

EVENTS = "loyalty/v1/stations/+/events"


class FakeHeadOffice:
    def __init__(self, port: int, *, client_id: str = "fake-head-office", acking: bool = True,
                 host: str = "127.0.0.1", tls: dict[str, Any] | None = None,
                 username: str | None = None, password: str | None = None) -> None:
        self.acking = acking
        self.lock = threading.Lock()
        self.events: dict[str, dict[str, Any]] = {}  # id -> event (deduplicated)
        self.seqs: dict[str, set[int]] = defaultdict(set)
        self.received = 0  # including duplicates
        self.messages = 0
        self.other: list[tuple[str, Any]] = []  # (topic, payload) of non-event station messages
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if tls:
            self.client.tls_set(**tls)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect(host, port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        client.subscribe([(EVENTS, 1), ("loyalty/v1/stations/+/availability", 1), ("loyalty/v1/stations/+/status", 1),
                          ("loyalty/v1/stations/+/alerts", 1), ("loyalty/v1/stations/+/config/errors", 1),
                          ("loyalty/v1/stations/+/replay/result", 1)])

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        parts = message.topic.split("/")
        station = parts[3]
        if parts[4] != "events":
            payload: Any = message.payload.decode()
            try:
                payload = json.loads(payload)
            except ValueError:
                pass
            with self.lock:
                self.other.append((message.topic, payload))
            return
        batch = json.loads(message.payload)
        ids = []
        with self.lock:
            self.messages += 1
            for event in batch["events"]:
                self.received += 1
                self.events.setdefault(event["id"], event)
                self.seqs[batch["station_id"]].add(event["seq"])
                ids.append(event["id"])
            acking = self.acking
        if acking:
            client.publish(f"loyalty/v1/stations/{station}/acks", json.dumps({"event_ids": ids}), qos=1)

    # ---- what tests ask ------------------------------------------------------------------

    def unique(self) -> int:
        with self.lock:
            return len(self.events)

    def gaps(self, station: str) -> list[int]:
        with self.lock:
            seen = self.seqs.get(station, set())
            return sorted(set(range(1, max(seen) + 1)) - seen) if seen else []

    def of_topic(self, suffix: str) -> list[Any]:
        with self.lock:
            return [p for t, p in self.other if t.endswith(suffix)]

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
