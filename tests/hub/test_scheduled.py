"""The leader's scheduled duties against a real PostgreSQL and a real Mosquitto: PIN bundles
renewed before they expire (verified with the agent's own verifier) and the weekly order made
on its day only."""
from __future__ import annotations

import os
import queue
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from agent.cards.pin_bundle import verify_bundle
from hub.central import attendants
from hub.central.config import CentralSettings
from hub.central.scheduled import renew_pin_bundles, weekly_order
from tests.fakes.mosquitto import Mosquitto
from tests.hub.conftest import needs_services
from tests.signing import HEAD_OFFICE_KEY

pytestmark = needs_services
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)  # a Monday


def client(port: int, received: "queue.Queue[tuple[str, bytes]] | None" = None) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{os.getpid()}-{time.monotonic_ns()}", protocol=mqtt.MQTTv5)
    if received is not None:
        c.on_message = lambda _c, _u, m: received.put((m.topic, bytes(m.payload)))
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def test_bundles_expiring_within_a_week_are_renewed_and_others_left_alone(db: psycopg.Connection, broker: Mosquitto,
                                                                          tmp_path: Path) -> None:
    settings = CentralSettings(pepper_dir=tmp_path / "peppers")
    for station in ("st-old", "st-fresh"):
        db.execute("INSERT INTO central_stations(station_id, name, point_value) VALUES (%s, %s, 1)", (station, station))
        db.execute("INSERT INTO attendants(station_id, attendant_id, display_name, pin_hash) VALUES (%s, 'P-1', 'Ana',"
                   " '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXoxMjM0NTY')",
                   (station,))
    attendants.build_bundle(db, HEAD_OFFICE_KEY, "st-old", days=35, now=NOW - timedelta(days=30))  # 5 days left
    attendants.build_bundle(db, HEAD_OFFICE_KEY, "st-fresh", days=35, now=NOW - timedelta(days=1))
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    watcher = client(broker.port, received)
    watcher.subscribe("loyalty/v1/stations/+/config/pin_bundle", qos=1)
    publisher = client(broker.port)
    try:
        assert renew_pin_bundles(db, publisher, HEAD_OFFICE_KEY, settings, now=NOW) == 1
        topic, body = received.get(timeout=10)
        assert topic.endswith("/st-old/config/pin_bundle")
        bundle = verify_bundle(body, HEAD_OFFICE_KEY.public_key(), station_id="st-old", now=NOW)
        assert bundle.version == 2 and bundle.expires_at == NOW + timedelta(days=35)
        assert renew_pin_bundles(db, publisher, HEAD_OFFICE_KEY, settings, now=NOW) == 0  # renewed: not due again
        assert received.empty()
    finally:
        for c in (watcher, publisher):
            c.loop_stop()
            c.disconnect()


def test_weekly_order_only_on_its_day(db: psycopg.Connection) -> None:
    db.execute("INSERT INTO reward_requests(redemption_id, station_id, account_id, reward_id, quantity, points,"
               " occurred_at, event_id) VALUES ('R1', 'st-1', 'A', 'BIKE', 1, -100, '2026-11-27T10:00:00Z', 'e1')")
    assert weekly_order(db, CentralSettings(order_weekday=2), now=NOW) is None  # Wednesdays
    assert weekly_order(db, CentralSettings(), now=NOW) == "OC-2026-11-29"
    assert db.execute("SELECT status FROM reward_requests").fetchone()[0] == "ordered"
