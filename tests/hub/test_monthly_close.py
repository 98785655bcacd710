"""Monthly close on a real PostgreSQL: FIFO expiry, fleet aggregation, settlement with
incomplete stations, idempotence, refusals, and the CSV/PDF printouts (CLI process)."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import psycopg
import pytest

from hub.central.close import close_month
from hub.central.errors import CentralError
from tests.hub.conftest import ROOT, needs_services

pytestmark = needs_services
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


class Ledger:
    """Rows as the ingest projections would have stored them (one event per movement)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn, self.n = conn, 0

    def station(self, station_id: str, *, point_value: str | None, last_event: str | None = None) -> None:
        if point_value is not None:
            self.conn.execute("INSERT INTO central_stations(station_id, name, point_value) VALUES (%s, %s, %s)",
                              (station_id, f"Estación {station_id}", point_value))
        if last_event is not None:
            self.conn.execute("INSERT INTO stations(station_id, contiguous_seq, max_seq_seen) VALUES (%s, 0, 0)"
                              " ON CONFLICT DO NOTHING", (station_id,))
            self._event(station_id, last_event)

    def _event(self, station_id: str, created_at: str) -> str:
        self.n += 1
        event_id = f"ev-{self.n}"
        seq = self.conn.execute("UPDATE stations SET contiguous_seq = contiguous_seq + 1, max_seq_seen = max_seq_seen + 1"
                                " WHERE station_id = %s RETURNING contiguous_seq", (station_id,)).fetchone()[0]
        self.conn.execute("INSERT INTO events(event_id, station_id, epoch, seq, type, schema_version, created_at,"
                          " clock_synced, payload) VALUES (%s, %s, 1, %s, 'points.earned', 1, %s, true, '{}')",
                          (event_id, station_id, seq, created_at))
        return event_id

    def account(self, account_id: str, *, fleet: bool = False) -> None:
        self.conn.execute("INSERT INTO accounts(account_id, is_fleet) VALUES (%s, %s)", (account_id, fleet))

    def move(self, account_id: str, station_id: str, points: int, at: str, group: str = "FUEL") -> None:
        self.conn.execute("INSERT INTO stations(station_id) VALUES (%s) ON CONFLICT DO NOTHING", (station_id,))
        event_id = self._event(station_id, at)
        movement = f"m-{self.n}"
        self.conn.execute("INSERT INTO point_movements(movement_id, account_id, station_id, kind, points, occurred_at,"
                          " event_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                          (movement, account_id, station_id, "earn" if points > 0 else "redeem", points, at, event_id))
        self.conn.execute("UPDATE accounts SET balance = balance + %s WHERE account_id = %s", (points, account_id))
        if points > 0:
            self.conn.execute("INSERT INTO sale_lines(movement_id, line_no, sale_id, station_id, kind, article_group,"
                              " amount, points, occurred_at) VALUES (%s, 1, %s, %s, 'earn', %s, 1000, %s, %s)",
                              (movement, f"s-{self.n}", station_id, group, points, at))


@pytest.fixture
def ledger(db: psycopg.Connection) -> Ledger:
    book = Ledger(db)
    book.station("st-1", point_value="2")
    book.station("st-2", point_value="1.5")
    book.station("st-3", point_value="1")  # registered, never synced
    for account in ("A", "B", "C", "O"):
        book.account(account)
    book.account("F", fleet=True)
    book.account("G", fleet=True)
    book.move("A", "st-1", 100, "2024-10-10T10:00:00.000Z")
    book.move("A", "st-1", 50, "2024-11-15T10:00:00.000Z")
    book.move("A", "st-1", -120, "2025-05-01T10:00:00.000Z")
    book.move("A", "st-1", 70, "2026-11-10T10:00:00.000Z")
    book.move("A", "st-1", 30, "2026-11-11T10:00:00.000Z", group="SHOP")
    book.move("B", "st-2", 40, "2024-01-01T10:00:00.000Z")
    book.move("C", "st-2", 10, "2024-06-01T10:00:00.000Z")
    book.move("C", "st-2", -20, "2025-01-01T10:00:00.000Z")
    book.move("F", "st-1", 200, "2026-11-20T10:00:00.000Z")
    book.move("G", "st-2", 10, "2026-11-20T11:00:00.000Z")
    book.move("O", "st-1", 5, "2026-12-01T08:00:00.000Z")  # st-1 has synced past the month's end
    db.execute("INSERT INTO fleet_owners(account_id, owner_account_id) VALUES ('F', 'O')")
    return book


def balances(db: psycopg.Connection) -> dict[str, int]:
    return dict(db.execute("SELECT account_id, balance FROM accounts").fetchall())


def test_close_expires_fifo_moves_fleet_points_and_settles(db: psycopg.Connection, ledger: Ledger) -> None:
    before = balances(db)
    result = close_month(db, "test:admin", "2026-11", expiry_months=24, now=NOW)
    assert result.first_run
    # A: 150 earned before 2024-12-01, 120 redeemed since: the oldest 30 expire. B: all 40.
    # C: redeemed more than it ever earned before the cutoff: nothing.
    assert dict(db.execute("SELECT account_id, points FROM point_expiries").fetchall()) == {"A": 30, "B": 40}
    assert (result.expired_accounts, result.expired_points) == (2, 70)
    after = balances(db)
    assert after["A"] == before["A"] - 30 and after["B"] == 0 and after["C"] == before["C"]
    assert after["F"] == 0 and after["O"] == before["O"] + 200
    assert result.fleet_without_owner == ["G"]
    queued = {r[0] for r in db.execute("SELECT account_id FROM directory_changes")}
    assert {"A", "B", "F", "O"} <= queued  # stations learn the new balances from the directory
    lines = {(s, g): (int(p), a) for s, g, p, a in db.execute(
        "SELECT station_id, article_group, points, amount FROM settlement_lines")}
    assert lines == {("st-1", "FUEL"): (270, 540), ("st-1", "SHOP"): (30, 60), ("st-2", "FUEL"): (10, 15)}
    assert [s for s, _ in result.incomplete] == ["st-2", "st-3"]
    assert "nunca sincronizó" in dict(result.incomplete)["st-3"]


def test_second_run_changes_no_balance_and_reprints_the_same_settlement(db: psycopg.Connection, ledger: Ledger) -> None:
    close_month(db, "test:admin", "2026-11", expiry_months=24, now=NOW)
    first = (balances(db), db.execute("SELECT * FROM settlement_lines ORDER BY 2, 3").fetchall())
    again = close_month(db, "test:other", "2026-11", expiry_months=24, now=NOW)
    assert not again.first_run and again.runs == 2 and again.closed_by == "test:admin"
    assert (balances(db), db.execute("SELECT * FROM settlement_lines ORDER BY 2, 3").fetchall()) == first
    actions = [r[0] for r in db.execute("SELECT actor || ' ' || action FROM audit_log ORDER BY audit_id")]
    assert actions == ["test:admin month.closed", "test:other month.close_rerun"]


def test_late_data_completes_the_settlement_on_a_rerun(db: psycopg.Connection, ledger: Ledger) -> None:
    close_month(db, "test:admin", "2026-11", expiry_months=24, now=NOW)
    ledger.move("B", "st-2", 8, "2026-11-30T23:00:00.000Z")
    ledger.move("B", "st-2", 1, "2026-12-02T09:00:00.000Z")
    rerun = close_month(db, "test:admin", "2026-11", expiry_months=24, now=NOW)
    assert [s for s, _ in rerun.incomplete] == ["st-3"]
    assert db.execute("SELECT points FROM settlement_lines WHERE station_id = 'st-2'").fetchone()[0] == 18


@pytest.mark.parametrize(("month", "code"), [("2026-12", "month_not_over"), ("2027-01", "month_not_over"),
                                             ("2026-13", "bad_month"), ("11-2026", "bad_month"), ("", "bad_month")])
def test_refusals_change_nothing(db: psycopg.Connection, ledger: Ledger, month: str, code: str) -> None:
    before = balances(db)
    with pytest.raises(CentralError) as caught:
        close_month(db, "test:admin", month, expiry_months=24, now=NOW)
    assert caught.value.code == code
    assert balances(db) == before and db.execute("SELECT count(*) FROM monthly_closes").fetchone()[0] == 0


def test_cli_close_writes_csv_and_pdf_and_says_when_already_closed(tmp_path: Path, database: str,
                                                                   ledger: Ledger) -> None:
    env = {**os.environ, "LOYALTY_HUB_CENTRAL__ACTOR": "cli:test"}
    argv = [sys.executable, "-m", "hub.cli", "close-month", "2026-11", "--database-url", database, "--out", str(tmp_path)]
    first = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "mes 2026-11 cerrado: 70 puntos vencidos en 2 cuentas" in first.stderr
    assert "INCOMPLETA para st-3" in first.stderr and "flota sin titular (no se sumó): G" in first.stderr
    rows = list(csv.reader((tmp_path / "liquidacion-2026-11.csv").open(encoding="utf-8")))
    assert rows[1] == ["2026-11", "st-1", "Estación st-1", "FUEL", "270", "2.0000", "540.0000"]
    assert (tmp_path / "liquidacion-2026-11.pdf").read_bytes().startswith(b"%PDF")
    printed = (tmp_path / "liquidacion-2026-11.csv").read_bytes()
    second = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert second.returncode == 0 and "ya estaba cerrado (por cli:test" in second.stderr
    assert (tmp_path / "liquidacion-2026-11.csv").read_bytes() == printed
    december = subprocess.run([*argv[:4], "2999-01", *argv[5:]], capture_output=True, text=True, env=env, cwd=ROOT)
    assert december.returncode == 2 and "no terminó" in december.stderr


def test_the_directory_announces_what_the_next_close_will_expire(db: psycopg.Connection, ledger: Ledger) -> None:
    from hub.directory import account_rows

    close_month(db, "test:admin", "2026-11", expiry_months=24, now=NOW)
    ledger.move("C", "st-2", 60, "2024-12-20T10:00:00.000Z")  # earned just after November's cutoff
    rows = account_rows(db, ["A", "C"], 0, "2026-12-05T00:00:00Z")
    # December's close (cutoff 2025-01-01): C's 60 minus the 10 it redeemed beyond its older points.
    assert rows["C"]["snapshot"]["expiring_next_close"] == 50
    assert rows["A"]["snapshot"]["expiring_next_close"] == 0
    assert rows["C"]["snapshot"]["next_close"].endswith("-31") or rows["C"]["snapshot"]["next_close"].endswith("-30")


def test_points_a_fleet_owner_received_are_announced_as_expiring(db: psycopg.Connection, ledger: Ledger) -> None:
    from datetime import date

    from hub.central.close import expiring_at_next_close

    ledger.account("P")  # no movement of its own: only the fleet transfer credits it
    ledger.account("H", fleet=True)
    ledger.move("H", "st-1", 40, "2026-11-21T10:00:00.000Z")
    db.execute("INSERT INTO fleet_owners(account_id, owner_account_id) VALUES ('H', 'P')")
    close_month(db, "test:admin", "2026-11", expiry_months=24, now=NOW)
    # With one month of validity, January 2027's close expires what was credited before 2027-01-01.
    _, expiring = expiring_at_next_close(db, ["P", "O", "A", "C", "nobody"], expiry_months=1, today=date(2027, 1, 5))
    assert expiring == {"P": 40, "O": 205, "A": 100}  # A: 250 earned before, 120 redeemed, 30 expired
    _, expiring = expiring_at_next_close(db, ["P", "O", "A", "C"], expiry_months=24, today=date(2026, 12, 5))
    assert expiring == {}  # December 2026: the cutoff is 2025-01-01 and C already redeemed its older 10
