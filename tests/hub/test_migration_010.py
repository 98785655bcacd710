"""Migration 010 on a database that already holds sales (real PostgreSQL): every sale is still
there, through the ``sales`` view, with the same values; a sale without its earn movement stops
the migration and changes nothing."""
from __future__ import annotations

import os
from collections.abc import Iterator

import psycopg
import pytest

from hub.db import migrate as migrations
from tests.hub.postgres import Postgres

_SALES = ("SELECT sale_id, station_id, pos, receipt_number, account_id, card_number, attendant_id, program_version,"
          " points, occurred_at, event_id, customer_id, identified_by FROM sales ORDER BY sale_id")


@pytest.fixture
def at_009(postgres_server: Postgres, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection]:
    """A database migrated up to 009, with two sales booked the way hubs before 010 did."""
    name = f"t{os.urandom(6).hex()}"
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(postgres_server.url.rsplit("/", 1)[0] + f"/{name}", autocommit=True) as conn:
        with monkeypatch.context() as m:
            m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:9])
            assert migrations.migrate(conn)[-1] == "hub_009_movement_accounts_per_statement"
        conn.execute("INSERT INTO stations(station_id) VALUES ('EST-1')")
        conn.execute("INSERT INTO accounts(account_id, station_id) VALUES ('LA-1', 'EST-1')")
        for n, attendant in ((1, "P-07"), (2, "")):  # '' as hubs before a0cdcfc stored it
            conn.execute("INSERT INTO events(event_id, station_id, epoch, seq, type, schema_version, created_at,"
                         " clock_synced, payload) VALUES (%s, 'EST-1', 0, %s, 'points.earned', 1,"
                         " '2026-11-0%sT10:00:00.000Z', true, '{}')", (f"ev-{n}", n, n))
            conn.execute("INSERT INTO point_movements(movement_id, account_id, station_id, ledger_seq, kind, points,"
                         " card_number, reference_id, occurred_at, event_id) VALUES (%s, 'LA-1', 'EST-1', %s, 'earn',"
                         " 10, 'LC-1', %s, '2026-11-0%sT10:00:00.000Z', %s)", (f"mv-{n}", n, f"sale-{n}", n, f"ev-{n}"))
            conn.execute("INSERT INTO sales(sale_id, station_id, pos, receipt_number, account_id, card_number,"
                         " attendant_id, program_version, points, occurred_at, event_id, customer_id, identified_by)"
                         " VALUES (%s, 'EST-1', 'P1', %s, 'LA-1', 'LC-1', %s, 'v3', 10, '2026-11-0%sT10:00:00.000Z',"
                         " %s, %s, 'card')", (f"sale-{n}", f"R{n}", attendant, n, f"ev-{n}", f"C-{n}"))
        yield conn


def test_every_sale_reads_the_same_through_the_view(at_009: psycopg.Connection) -> None:
    before = at_009.execute(_SALES).fetchall()
    assert migrations.migrate(at_009) == ["hub_010_sale_is_its_movement"]
    after = at_009.execute(_SALES).fetchall()
    assert after == [row[:6] + (row[6] or None,) + row[7:] for row in before]  # '' attendant -> NULL
    assert after[1][6] is None and after[0][6] == "P-07"
    kind = at_009.execute("SELECT relkind FROM pg_class WHERE relname = 'sales'").fetchone()[0]
    assert kind == "v"
    brin = at_009.execute("SELECT count(*) FROM pg_indexes WHERE indexname IN ('point_movements_occurred',"
                          " 'sale_lines_occurred') AND indexdef LIKE '%USING brin%'").fetchone()[0]
    assert brin == 2


def test_a_sale_without_its_movement_stops_the_migration_and_changes_nothing(at_009: psycopg.Connection) -> None:
    at_009.execute("DELETE FROM point_movements WHERE movement_id = 'mv-2'")
    with pytest.raises(psycopg.errors.RaiseException, match="1 ventas sin su movimiento"):
        migrations.migrate(at_009)
    assert migrations.pending(at_009) == ["hub_010_sale_is_its_movement"]
    assert at_009.execute("SELECT relkind FROM pg_class WHERE relname = 'sales'").fetchone()[0] == "r"
    assert at_009.execute("SELECT count(*) FROM sales").fetchone()[0] == 2


def test_the_movements_check_still_refuses_an_unknown_account(at_009: psycopg.Connection) -> None:
    migrations.migrate(at_009)
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        at_009.execute("INSERT INTO point_movements(movement_id, account_id, station_id, kind, points, occurred_at,"
                       " event_id) VALUES ('mv-x', 'LA-1', 'EST-1', 'earn', 1, 'x', 'ev-1'),"
                       " ('mv-y', 'LA-nobody', 'EST-1', 'earn', 1, 'x', 'ev-1'),"
                       " ('mv-z', 'LA-1', 'EST-1', 'earn', 1, 'x', 'ev-1')")
    assert at_009.execute("SELECT count(*) FROM point_movements").fetchone()[0] == 2
