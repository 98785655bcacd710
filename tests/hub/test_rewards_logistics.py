"""Rewards logistics on a real PostgreSQL: the weekly order (idempotent, configurable weekday),
pending requests, slips with the customer's data, replenishment from the week's grants,
shipments received at the station, immobilized stock, statistics; and the CLI."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import date, datetime, timezone

import psycopg
import pytest

from hub.central import rewards
from hub.central.errors import CentralError
from tests.hub.conftest import ROOT, needs_services

pytestmark = needs_services


def request(db: psycopg.Connection, rid: str, at: str, reward: str = "BIKE", quantity: int = 1,
            station: str = "st-1", account: str = "A") -> None:
    db.execute("INSERT INTO reward_requests(redemption_id, station_id, account_id, reward_id, quantity, points,"
               " occurred_at, event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
               (rid, station, account, reward, quantity, -5000 * quantity, at, f"ev-{rid}"))


def stock(db: psycopg.Connection, mid: str, station: str, reward: str, kind: str, quantity: int, after: int, at: str,
          document: str | None = None) -> None:
    db.execute("INSERT INTO stock_movements(movement_id, station_id, reward_id, kind, quantity, stock_after, document,"
               " at, event_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
               (mid, station, reward, kind, quantity, after, document, at, f"ev-{mid}"))
    db.execute("INSERT INTO station_stock(station_id, reward_id, stock) VALUES (%s, %s, %s) ON CONFLICT"
               " (station_id, reward_id) DO UPDATE SET stock = excluded.stock", (station, reward, after))


@pytest.fixture
def data(db: psycopg.Connection) -> psycopg.Connection:
    customer = {"first_name": "María", "first_surname": "Peña", "phones": [{"number": "+56987654321", "kind": "mobile"}],
                "document": {"display": "12.345.678-5"}}
    db.execute("INSERT INTO customers(customer_id, version, document_country, document_type, document_number, data,"
               " station_id) VALUES ('C-1', 1, 'CL', 'RUT', '123456785', %s, 'st-1')", (json.dumps(customer),))
    db.execute("INSERT INTO accounts(account_id, customer_id) VALUES ('A', 'C-1')")
    request(db, "R1", "2026-11-25T10:00:00.000Z")               # Wednesday
    request(db, "R2", "2026-11-29T23:59:00.000Z", quantity=2)   # Sunday, last minute before the cutoff
    request(db, "R3", "2026-11-30T08:00:00.000Z", reward="TV")  # Monday: next week's order
    stock(db, "S1", "st-1", "MUG", "receipt", 10, 10, "2026-11-01T10:00:00.000Z", "GR-1")
    stock(db, "S2", "st-1", "MUG", "grant", -3, 7, "2026-11-24T10:00:00.000Z")
    stock(db, "S3", "st-1", "MUG", "grant", -1, 6, "2026-11-26T10:00:00.000Z")
    stock(db, "S4", "st-2", "CAP", "receipt", 5, 5, "2026-05-01T10:00:00.000Z", "GR-0")
    return db


def test_weekly_order_takes_requests_up_to_the_cutoff_once(data: psycopg.Connection) -> None:
    monday = date(2026, 11, 30)
    assert [r[0] for r in rewards.pending(data)] == ["R1", "R2", "R3"]
    order_id, created = rewards.make_order(data, "test", weekday=0, today=monday)
    assert (order_id, created) == ("OC-2026-11-29", True)
    assert rewards.order_lines(data, order_id) == [("BIKE", 3)]
    assert [r[0] for r in rewards.pending(data)] == ["R3"]
    again = rewards.make_order(data, "test", weekday=0, today=date(2026, 12, 3))  # Thursday, same week
    assert again == (order_id, False) and rewards.order_lines(data, order_id) == [("BIKE", 3)]
    slip = rewards.slips(data, order_id)[1]
    assert (slip["name"], slip["document"], slip["phone"], slip["quantity"]) == ("María Peña", "12.345.678-5",
                                                                                  "+56987654321", 2)
    # Another weekday: orders on Thursdays cut at Wednesday's end.
    assert rewards.last_cutoff(date(2026, 12, 3), 3) == date(2026, 12, 2)
    assert rewards.last_cutoff(date(2026, 12, 2), 3) == date(2026, 11, 25)


def test_replenishment_shipments_receipt_immobilized_and_statistics(data: psycopg.Connection) -> None:
    assert rewards.replenishment(data, date(2026, 11, 23)) == [("st-1", "MUG", 4)]
    rewards.ship(data, "test", "GR-7", "st-1", "MUG", 4)
    with pytest.raises(CentralError):
        rewards.ship(data, "test", "GR-7", "st-1", "MUG", 4)
    with pytest.raises(CentralError):
        rewards.ship(data, "test", "GR-8", "st-1", "MUG", 0)
    assert rewards.shipments(data)[0][5] is None
    stock(data, "S5", "st-1", "MUG", "receipt", 4, 10, "2026-12-01T09:00:00.000Z", "GR-7")
    assert rewards.shipments(data)[0][5] == "2026-12-01T09:00:00.000Z"
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert rewards.immobilized(data, 90, now) == [("st-2", "CAP", 5, None)]
    assert rewards.statistics(data, date(2026, 11, 1)) == [("BIKE", 0, 3, 15000), ("MUG", 4, 0, 0), ("TV", 0, 1, 5000)]


def test_cli_order_prints_the_consolidated_lines(database: str, data: psycopg.Connection) -> None:
    done = subprocess.run([sys.executable, "-m", "hub.cli", "rewards", "order", "--database-url", database],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == ["pedido", "premio", "cantidad"] and len(rows) >= 2
    bad = subprocess.run([sys.executable, "-m", "hub.cli", "rewards", "replenish", "2026-13-01", "--database-url", database],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 2 and "fecha inválida" in bad.stderr
