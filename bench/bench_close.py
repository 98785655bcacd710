"""Monthly close (issue 16) over generated data in a real PostgreSQL started here.

Generates accounts, movements and stations with COPY (30 months of history, ~15% debits, 5%
fleet accounts, half of them with an owner), then measures ``close_month`` (FIFO expiry over
the whole ledger, fleet aggregation, settlement) and its idempotent re-run, beside two floors
measured in the same run on the same rows: the bare ``SELECT sum(points) ... GROUP BY
station_id, article_group`` over the month's sale lines (what the settlement must at least
read) and the same over every sale line. Peak memory is the PostgreSQL backend's VmHWM
(the close runs there) and this process's max RSS.

    python -m bench close [--accounts 1000000 --movements 50000000 --stations 1000]

The issue's size is 1,000,000 / 50,000,000 / 1,000; the default is smaller so that ``make
bench`` fits a shared 2-core machine: say which size you ran when you quote a number.
"""
from __future__ import annotations

import argparse
import io
import random
import resource
import time
from datetime import datetime, timezone

import psycopg

MONTHS = [(2024 + (5 + i) // 12, (5 + i) % 12 + 1) for i in range(30)]  # 2024-06 .. 2026-11
CLOSE = "2026-11"


def _copy(conn: psycopg.Connection, table: str, columns: str, rows: int, make_line, chunk: int = 200_000) -> None:  # type: ignore[no-untyped-def]
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for start in range(0, rows, chunk):
            buf = io.StringIO()
            for i in range(start, min(rows, start + chunk)):
                buf.write(make_line(i))
            copy.write(buf.getvalue())


def generate(conn: psycopg.Connection, accounts: int, movements: int, stations: int, seed: int = 16) -> None:
    rng = random.Random(seed)
    rand, randint = rng.random, rng.randrange
    _copy(conn, "central_stations", "station_id, name, point_value", stations,
          lambda i: f"st-{i:04d}\tEstación {i}\t{1 + (i % 4) * 0.25}\n")
    # Every station but the last 1% has sent an event created after the month's end.
    _copy(conn, "stations", "station_id, contiguous_seq, max_seq_seen", stations, lambda i: f"st-{i:04d}\t1\t1\n")
    _copy(conn, "events", "event_id, station_id, epoch, seq, type, schema_version, created_at, clock_synced, payload",
          stations, lambda i: f"ev-{i}\tst-{i:04d}\t1\t1\tpoints.earned\t1\t"
                              f"{'2026-12-01T06:00:00.000Z' if i < stations * 0.99 else '2026-11-20T06:00:00.000Z'}"
                              "\ttrue\t{}\n")
    _copy(conn, "accounts", "account_id, is_fleet", accounts, lambda i: f"A{i}\t{'t' if i % 20 == 0 else 'f'}\n")
    _copy(conn, "fleet_owners", "account_id, owner_account_id", accounts // 40,
          lambda i: f"A{i * 40}\tA{i * 40 + 1}\n")

    def movement(i: int) -> str:
        year, month = MONTHS[randint(30)]
        station = randint(stations)
        points = -randint(1, 300) if rand() < 0.15 else randint(1, 120)
        return (f"M{i}\tA{randint(accounts)}\tst-{station:04d}\t{'redeem' if points < 0 else 'earn'}\t{points}\t"
                f"{year}-{month:02d}-{randint(1, 29):02d}T{randint(24):02d}:00:00.000Z\tev-{station}\n")

    _copy(conn, "point_movements", "movement_id, account_id, station_id, kind, points, occurred_at, event_id",
          movements, movement)
    groups = ("FUEL", "SHOP", "LUBE", "WASH")
    conn.execute("INSERT INTO sale_lines(movement_id, line_no, sale_id, station_id, kind, article_group, amount, points,"
                 " occurred_at) SELECT movement_id, 1, movement_id, station_id, 'earn',"
                 " (ARRAY['" + "','".join(groups) + "'])[1 + abs(hashtext(movement_id)) % 4], points * 100, points,"
                 " occurred_at FROM point_movements WHERE points > 0")
    conn.execute("UPDATE accounts a SET balance = t.s FROM (SELECT account_id, sum(points) s FROM point_movements"
                 " GROUP BY 1) t WHERE t.account_id = a.account_id")
    conn.execute("VACUUM ANALYZE")


def _backend_peak_kib(pid: int) -> int:
    for line in open(f"/proc/{pid}/status", encoding="ascii"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return -1


def _timed(url: str, work) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Wall time and the backend's peak RSS (a fresh connection, so the peak is this work's)."""
    with psycopg.connect(url, autocommit=True) as conn:
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        started = time.perf_counter()
        work(conn)
        return time.perf_counter() - started, _backend_peak_kib(pid)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_close")
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--movements", type=int, default=2_000_000)
    parser.add_argument("--stations", type=int, default=1_000)
    args = parser.parse_args(argv)

    from hub.central.close import close_month
    from hub.db.migrate import migrate
    from tests.hub.postgres import Postgres

    server = Postgres(fsync=False).start()
    try:
        with psycopg.connect(server.url, autocommit=True) as conn:
            migrate(conn)
            started = time.perf_counter()
            generate(conn, args.accounts, args.movements, args.stations)
            print(f"generated {args.accounts:,} accounts, {args.movements:,} movements, {args.stations:,} stations "
                  f"in {time.perf_counter() - started:.0f} s (COPY)")
        month_rows = "occurred_at >= '2026-11-01' AND occurred_at < '2026-12-01'"
        floor_month, floor_month_mem = _timed(server.url, lambda c: c.execute(
            f"SELECT station_id, article_group, sum(points) FROM sale_lines WHERE {month_rows} GROUP BY 1, 2").fetchall())
        floor_all, floor_all_mem = _timed(server.url, lambda c: c.execute(
            "SELECT station_id, article_group, sum(points) FROM sale_lines GROUP BY 1, 2").fetchall())
        now = datetime(2026, 12, 5, tzinfo=timezone.utc)
        results = {}
        close, close_mem = _timed(server.url, lambda c: results.setdefault(
            "first", close_month(c, "bench", CLOSE, expiry_months=24, now=now)))
        rerun, rerun_mem = _timed(server.url, lambda c: results.setdefault(
            "again", close_month(c, "bench", CLOSE, expiry_months=24, now=now)))
        first = results["first"]
        print(f"close {CLOSE}: {first.expired_points:,} points expired in {first.expired_accounts:,} accounts, "
              f"{first.fleet_transfers:,} fleet transfers, {first.settlement_points:,} points settled, "
              f"{len(first.incomplete)} stations incomplete")
        print(f"{'':34}{'wall s':>9}{'backend peak MiB':>18}{'x floor (month)':>17}")
        for name, secs, mem in (("floor: GROUP BY, month's lines", floor_month, floor_month_mem),
                                ("floor: GROUP BY, every line", floor_all, floor_all_mem),
                                ("close-month (first run)", close, close_mem),
                                ("close-month (re-run)", rerun, rerun_mem)):
            print(f"{name:34}{secs:9.2f}{mem / 1024:18.0f}{secs / floor_month:17.1f}")
        print(f"this process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        server.destroy()
    return 0
