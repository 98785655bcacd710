"""The leader's scheduled duties against a real PostgreSQL and a real Mosquitto: PIN bundles
renewed before they expire (verified with the agent's own verifier) and the weekly order made
on its day only; the monthly close on its day and hour in the chain's time zone, once."""
from __future__ import annotations

import os
import queue
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.cards.pin_bundle import verify_bundle
from hub.central import attendants
from hub.central.config import CentralSettings
from hub.central.close import close_month
from hub.central.scheduled import close_due, monthly_close, renew_pin_bundles, weekly_order
from tests.fakes.mosquitto import Mosquitto
from tests.hub.conftest import needs_services
from tests.hub.test_monthly_close import Ledger
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


# ---- the monthly close, scheduled, in the chain's time zone ---------------------------------

BOGOTA = ZoneInfo("America/Bogota")  # UTC-5, no daylight saving


def test_the_leader_closes_the_previous_month_on_its_day_and_hour_in_the_chain_zone_once(db: psycopg.Connection) -> None:
    book = Ledger(db)
    book.station("st-1", point_value="2", last_event="2026-12-01T09:00:00.000Z")
    book.account("A")
    book.move("A", "st-1", 10, "2026-11-10T12:00:00.000Z")
    # 21:00 of 30 November in Bogotá is already 1 December in UTC: November's, for the chain.
    book.move("A", "st-1", 7, "2026-12-01T02:00:00.000Z")
    # 00:30 of 1 December in Bogotá (05:30Z): December's.
    book.move("A", "st-1", 5, "2026-12-01T05:30:00.000Z")
    settings = CentralSettings(close_day=1, close_hour=3, close_business_day=False)
    # 1 December 2026, 02:59 in Bogotá (07:59Z): not yet; 03:00 (08:00Z): closed, by the scheduler.
    assert monthly_close(db, settings, now=datetime(2026, 12, 1, 7, 59, tzinfo=timezone.utc), zone=BOGOTA) is None
    assert db.execute("SELECT count(*) FROM monthly_closes").fetchone()[0] == 0
    assert monthly_close(db, settings, now=datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc), zone=BOGOTA) == "2026-11"
    assert db.execute("SELECT sum(points) FROM settlement_lines WHERE month = '2026-11-01'").fetchone()[0] == 17
    who = db.execute("SELECT first_closed_by, runs FROM monthly_closes").fetchone()
    assert who == ("hub:scheduler", 1)
    assert db.execute("SELECT actor FROM audit_log WHERE action = 'month.closed'").fetchone()[0] == "hub:scheduler"
    # Later the same day and the next days: nothing more (no automatic re-runs).
    for hours in (1, 30, 24 * 20):
        assert monthly_close(db, settings, now=datetime(2026, 12, 1, 8, tzinfo=timezone.utc) + timedelta(hours=hours),
                             zone=BOGOTA) is None
    assert db.execute("SELECT runs FROM monthly_closes").fetchone()[0] == 1
    # In UTC the same rows would give November only the 10 points: the zone is what moved the 7.
    assert close_month(db, "test", "2026-11", expiry_months=24, now=datetime(2026, 12, 2, tzinfo=timezone.utc),
                       zone=timezone.utc).settlement_points == 10


def test_a_close_day_on_a_weekend_moves_to_monday_when_business_days_are_asked() -> None:
    # 1 August 2026 is a Saturday.
    assert close_due(CentralSettings(close_day=1), date(2026, 8, 1)) == date(2026, 8, 3)
    assert close_due(CentralSettings(close_day=1, close_business_day=False), date(2026, 8, 1)) == date(2026, 8, 1)
    assert close_due(CentralSettings(close_day=1), date(2026, 12, 1)) == date(2026, 12, 1)  # a Tuesday


def test_the_scheduled_close_waits_for_the_business_day(db: psycopg.Connection) -> None:
    settings = CentralSettings()  # the 1st at 03:00, business days
    saturday = datetime(2026, 8, 1, 12, tzinfo=BOGOTA)
    assert monthly_close(db, settings, now=saturday, zone=BOGOTA) is None
    assert monthly_close(db, settings, now=datetime(2026, 8, 3, 2, 59, tzinfo=BOGOTA), zone=BOGOTA) is None
    assert monthly_close(db, settings, now=datetime(2026, 8, 3, 3, 0, tzinfo=BOGOTA), zone=BOGOTA) == "2026-07"


def test_the_chain_time_zone_setting_is_checked() -> None:
    from hub.config import ConfigError, load_settings

    assert load_settings(environ={}).chain.timezone == "America/Bogota"
    with pytest.raises(ConfigError, match="zona horaria desconocida"):
        load_settings(overrides={"chain": {"timezone": "America/Gotham"}}, environ={})
