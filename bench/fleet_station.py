"""Lightweight stations for the fleet benchmark: hundreds per process, each speaking the
station contract of docs/head-office.md exactly, without SQLite or HTTP:

- its own MQTT 5 connection, client id ``loyalty-agent-{id}``, ``clean_start=false`` and a
  7-day session, a retained Last Will ``offline``, ``online`` on every connect, subscriptions
  to its ``acks``, ``replay`` and ``config/+`` on every connect;
- event batches with gap-free ``seq``, UUIDv7 ids, valid ``points.earned`` payloads;
- an event is confirmed only by an ack with its id; unconfirmed events are sent again after
  ``ack_timeout_s`` and after every reconnect; a replay request resends the range and answers
  on ``replay/result``; a hub consumer joining or lost (``loyalty/v1/hub/consumers``) makes
  what was sent before it go again 0.2 s later (the agent's rule, with its spacing of such copies).

All clients of a process share one selector loop (paho's external-loop callbacks) instead of
a thread each, so 1,000 stations fit in a few processes of a 2-core machine.
"""
from __future__ import annotations

import json
import os
import random
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.queue.scheduler import hastened_due_at
from agent.queue.topics import HUB_CONSUMERS

ROOT = "loyalty/v1/stations"


def uuid7() -> str:
    ms = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 68) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


@dataclass
class LightStation:
    station_id: str
    client: mqtt.Client
    seq: int = 0
    events: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> event (kept, like retention)
    # seq -> the event as JSON text, written once when the event is made: the agent stores each
    # event's JSON and splices it into every batch it sends (agent.queue.messages.encode_batch),
    # so sending a backlog costs a station no re-encoding, here as there.
    texts: dict[int, str] = field(default_factory=dict)
    # id -> (seq, first sent, next resend due, attempts): the resend timer doubles per attempt, up to 1 h,
    # as the agent's does (docs/head-office.md: "after ack_timeout_s, doubling per attempt").
    unconfirmed: dict[str, tuple[int, float, float, int]] = field(default_factory=dict)
    hastened: dict[str, tuple[int, float]] = field(default_factory=dict)  # id -> (copies for consumer changes, last)
    last_sent: dict[str, float] = field(default_factory=dict)  # id -> monotonic time of its last copy
    changed_at: float = float("-inf")  # the last consumer change heard
    answered_change: float = float("-inf")  # every event sent before this change went again
    connected: bool = False
    next_reconnect: float = 0.0
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (wall time first sent, seconds to ack)
    resent: int = 0
    acked: int = 0
    directory_messages: int = 0

    def topic(self, leaf: str) -> str:
        return f"{ROOT}/{self.station_id}/{leaf}"

    def new_event(self) -> dict[str, Any]:
        self.seq += 1
        now = time.time()
        movement = uuid7()
        event = {"id": uuid7(), "seq": self.seq, "type": "points.earned", "schema_version": 1,
                 "created_at": _iso(now), "clock_synced": True, "payload": {
                     "movement_id": movement, "ledger_seq": self.seq, "sale_id": uuid7(), "station": self.station_id,
                     "receipt": {"station": self.station_id, "pos": "P1", "number": f"R{self.seq}"},
                     "account_id": f"LA-{self.station_id}", "card_number": f"LC-{self.station_id}",
                     "customer_id": None, "identified_by": "card",
                     "attendant_id": "P-01", "session_id": None, "occurred_at": _iso(now), "points": 10,
                     "by_article_group": {"FUEL": 10}, "program_version": "bench",
                     "lines": [{"line_no": 1, "sku": "95", "article_group": "FUEL", "quantity": "10.5",
                                "amount": "13650", "points": 10, "rules": ["fuel"]}]}}
        self.events[self.seq] = event
        self.texts[self.seq] = json.dumps(event, separators=(",", ":"))
        return event

    def send(self, events: list[dict[str, Any]], ack_timeout_s: float, *, resend: bool = False) -> None:
        if not events or not self.connected:
            return
        now = time.monotonic()
        for start in range(0, len(events), 200):
            chunk = ",".join(self.texts[e["seq"]] for e in events[start:start + 200])
            self.client.publish(self.topic("events"), f'{{"station_id":{json.dumps(self.station_id)},"events":[{chunk}]}}',
                                qos=1)
        for e in events:
            self.last_sent[e["id"]] = now
            _, first, _, attempts = self.unconfirmed.get(e["id"], (0, now, now, 0))
            self.unconfirmed[e["id"]] = (e["seq"], first, now + min(3600.0, ack_timeout_s * 2 ** attempts),
                                         attempts + 1)
        if resend:
            self.resent += len(events)

    def emit(self, ack_timeout_s: float, n: int = 1) -> None:
        self.release([self.new_event() for _ in range(n)], ack_timeout_s)

    def release(self, fresh: list[dict[str, Any]], ack_timeout_s: float) -> None:
        """Send events made earlier (:meth:`new_event`): an outage's backlog, made while offline."""
        now = time.monotonic()
        for e in fresh:  # unconfirmed from birth, even while offline (sent on reconnect)
            self.unconfirmed[e["id"]] = (e["seq"], now, now, 0)
        if self.connected:
            self.send(fresh, ack_timeout_s)

    def resend_due(self, ack_timeout_s: float) -> None:
        if not self.connected:
            return
        now = time.monotonic()
        due = [self.events[seq] for seq, _, next_due, _ in self.unconfirmed.values() if now >= next_due]
        if self.changed_at > self.answered_change:  # runs every loop: scan only while a change is open
            waiting = False
            for event_id, (seq, _, next_due, _) in self.unconfirmed.items():
                if now >= next_due or self.last_sent.get(event_id, now) >= self.changed_at:
                    continue
                if now >= self._hasten_at(event_id):
                    self.hastened[event_id] = (self.hastened.get(event_id, (0, 0.0))[0] + 1, now)
                    due.append(self.events[seq])
                else:
                    waiting = True
            if not waiting:
                self.answered_change = self.changed_at
        self.send(sorted(due, key=lambda e: e["seq"]), ack_timeout_s, resend=True)

    def _hasten_at(self, event_id: str) -> float:
        """When a consumer change makes an event sent before it go again: the agent's rule."""
        return hastened_due_at(self.changed_at, *self.hastened.get(event_id, (0, float("-inf"))))

    def consumers_changed(self) -> None:
        self.changed_at = time.monotonic()

    def on_ack(self, payload: bytes) -> None:
        try:
            ids = json.loads(payload)["event_ids"]
        except (ValueError, KeyError, TypeError):
            return
        now = time.monotonic()
        for event_id in ids:
            entry = self.unconfirmed.pop(event_id, None) if isinstance(event_id, str) else None
            if entry is not None:
                self.hastened.pop(event_id, None)
                self.last_sent.pop(event_id, None)
                waited = now - entry[1]
                self.latencies.append((time.time() - waited, waited))
                self.acked += 1

    def on_replay(self, payload: bytes, ack_timeout_s: float) -> None:
        try:
            request = json.loads(payload)
            lo, hi, request_id = int(request["from_seq"]), int(request["to_seq"]), request.get("request_id")
        except (ValueError, KeyError, TypeError):
            return
        wanted = [self.events[s] for s in range(lo, min(hi, self.seq) + 1) if s in self.events]
        reopened = 0
        for e in wanted:
            if e["id"] not in self.unconfirmed:
                reopened += 1
        self.send(wanted, ack_timeout_s, resend=True)
        self.client.publish(self.topic("replay/result"), json.dumps({
            "request_id": request_id, "status": "ok", "from_seq": lo, "to_seq": hi, "reopened": reopened,
            "missing": 0, "oldest_available_seq": 1}), qos=1)


class Fleet:
    """Many light stations on one selector loop."""

    def __init__(self, ids: list[str], host: str, port: int, ack_timeout_s: float) -> None:
        self.host, self.port, self.ack_timeout_s = host, port, ack_timeout_s
        self.selector = selectors.DefaultSelector()
        self.stations = [self._make(sid) for sid in ids]
        self.downlink_messages = 0

    def _make(self, station_id: str) -> LightStation:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"loyalty-agent-{station_id}", protocol=mqtt.MQTTv5)
        station = LightStation(station_id, client)
        client.will_set(station.topic("availability"), json.dumps({"state": "offline", "station_id": station_id}),
                        qos=1, retain=True)
        client.on_connect = lambda c, u, f, rc, p: self._connected(station, rc)
        client.on_disconnect = lambda c, u, f, rc, p: self._disconnected(station)
        client.on_message = lambda c, u, m: self._message(station, m)
        client.on_socket_open = lambda c, u, s: self.selector.register(s, selectors.EVENT_READ, station)
        client.on_socket_close = lambda c, u, s: self._unregister(s)
        client.on_socket_register_write = lambda c, u, s: self.selector.modify(
            s, selectors.EVENT_READ | selectors.EVENT_WRITE, station)
        client.on_socket_unregister_write = lambda c, u, s: self._modify_read(s, station)
        return station

    def _unregister(self, sock: socket.socket) -> None:
        try:
            self.selector.unregister(sock)
        except (KeyError, ValueError):
            pass

    def _modify_read(self, sock: socket.socket, station: LightStation) -> None:
        try:
            self.selector.modify(sock, selectors.EVENT_READ, station)
        except (KeyError, ValueError):
            pass

    def connect_all(self) -> None:
        for station in self.stations:
            self._connect(station)

    def _connect(self, station: LightStation) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600
        try:
            station.client.connect(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        except OSError:
            station.next_reconnect = time.monotonic() + 0.5 + random.random()

    def _connected(self, station: LightStation, reason: Any) -> None:
        if reason.is_failure:
            return
        station.connected = True
        c = station.client
        c.subscribe([(station.topic("acks"), 1), (station.topic("replay"), 1), (station.topic("config/+"), 1),
                     (HUB_CONSUMERS, 0)])
        c.publish(station.topic("availability"), json.dumps({"state": "online", "station_id": station.station_id,
                                                             "version": "bench"}), qos=1, retain=True)
        # After a reconnect everything unconfirmed goes again (in-flight messages may be lost).
        station.send(sorted((station.events[s] for s, _, _, _ in station.unconfirmed.values()), key=lambda e: e["seq"]),
                     self.ack_timeout_s, resend=True)

    def _disconnected(self, station: LightStation) -> None:
        station.connected = False
        station.next_reconnect = time.monotonic() + 0.5 + random.random()  # jitter: no lockstep reconnect

    def _message(self, station: LightStation, message: mqtt.MQTTMessage) -> None:
        if message.topic.endswith("/acks"):
            station.on_ack(message.payload)
        elif message.topic.endswith("/replay"):
            station.on_replay(message.payload, self.ack_timeout_s)
        elif message.topic == HUB_CONSUMERS:
            if not message.retain:
                station.consumers_changed()
        else:
            self.downlink_messages += 1
            if message.topic.endswith("/config/directory"):
                station.directory_messages += 1

    def pump(self, timeout: float) -> None:
        for key, mask in self.selector.select(timeout):
            station: LightStation = key.data
            if mask & selectors.EVENT_READ:
                station.client.loop_read()
            if mask & selectors.EVENT_WRITE:
                station.client.loop_write()

    def housekeeping(self) -> None:
        now = time.monotonic()
        for station in self.stations:
            station.client.loop_misc()
            if not station.connected and station.next_reconnect and now >= station.next_reconnect:
                station.next_reconnect = 0.0
                try:
                    station.client.reconnect()
                except OSError:
                    station.next_reconnect = now + 1.0
            station.resend_due(self.ack_timeout_s)

    def stats(self) -> dict[str, Any]:
        return {"events": sum(s.seq for s in self.stations),
                "unconfirmed": sum(len(s.unconfirmed) for s in self.stations),
                "resent": sum(s.resent for s in self.stations),
                "acked": sum(s.acked for s in self.stations),
                "downlink_messages": self.downlink_messages,
                "per_station": {s.station_id: s.seq for s in self.stations}}

    def close(self) -> None:
        for station in self.stations:
            try:
                station.client.disconnect()
                station.client.loop_write()
            except (OSError, ValueError):
                pass
