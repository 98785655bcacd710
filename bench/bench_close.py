"""Monthly close (issue 16) over generated data in a real PostgreSQL started here.

Generates accounts, movements and stations inside PostgreSQL (``INSERT ... SELECT ...
generate_series``, deterministic; 30 months of history, ~15% debits, 5%
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
import resource
import time
from datetime import datetime, timezone

import psycopg

MONTHS = [(2024 + (5 + i) // 12, (5 + i) % 12 + 1) for i in range(30)]  # 2024-06 .. 2026-11
CLOSE = "2026-11"


def _without_indexes(conn: psycopg.Connection, tables: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """Drop the tables' foreign keys and indexes (primary keys included), switch off their
    triggers, and return the statements that put them back: building an index once over sorted rows is far cheaper than keeping it
    up to date through tens of millions of inserts."""
    restore: list[str] = []
    for table in tables:
        constraints = conn.execute(
            "SELECT conname, pg_get_constraintdef(oid), contype FROM pg_constraint"
            " WHERE conrelid = %s::regclass AND contype IN ('p', 'f') ORDER BY contype DESC", (table,)).fetchall()
        indexes = conn.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND i.indexname NOT IN"
            " (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)", (table, table)).fetchall()
        for name, definition, _ in constraints:
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        # Migration 009's per-statement account check would hold every generated movement in a
        # transition table; the generated rows are valid by construction.
        conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        # Primary key first, then the other indexes, then the foreign keys (checked once, in bulk).
        restore += [f'ALTER TABLE {table} ADD CONSTRAINT "{n}" {d}' for n, d, t in constraints if t == "p"]
        restore += [d for _, d in indexes]
        restore += [f'ALTER TABLE {table} ADD CONSTRAINT "{n}" {d}' for n, d, t in constraints if t == "f"]
        restore.append(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    return restore


# Deterministic pseudo-random numbers inside PostgreSQL: hashint8extended(row number, seed), masked
# to non-negative. The same size always gives the same rows, and no row crosses the socket.
def _h(seed: int) -> str:
    return f"(hashint8extended(i, {seed}) & 9223372036854775807)"


def generate(conn: psycopg.Connection, accounts: int, movements: int, stations: int, chunk: int = 5_000_000,
             progress=print) -> None:  # type: ignore[no-untyped-def]
    """Every row made by ``INSERT ... SELECT ... generate_series`` in the server (COPY from Python
    took 36 min for 10M movements; this is bounded by PostgreSQL's own insert speed)."""
    started = time.perf_counter()

    def phase(name: str) -> None:
        progress(f"  {name} ({time.perf_counter() - started:.0f} s)")

    # Index builds sort in memory instead of on disk; one process (the machine is shared).
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute("SET max_parallel_maintenance_workers = 0")
    conn.execute("SET work_mem = '256MB'")
    conn.execute("INSERT INTO central_stations(station_id, name, point_value) SELECT 'st-' || lpad(i::text, 4, '0'),"
                 " 'Estación ' || i, 1 + (i %% 4) * 0.25 FROM generate_series(0, %s - 1) i", (stations,))
    conn.execute("INSERT INTO stations(station_id, contiguous_seq, max_seq_seen) SELECT 'st-' || lpad(i::text, 4, '0'),"
                 " 1, 1 FROM generate_series(0, %s - 1) i", (stations,))
    # Every station but the last 1% has sent an event created after the month's end.
    conn.execute("INSERT INTO events(event_id, station_id, epoch, seq, type, schema_version, created_at, clock_synced,"
                 " payload) SELECT 'ev-' || i, 'st-' || lpad(i::text, 4, '0'), 1, 1, 'points.earned', 1,"
                 " CASE WHEN i < %s * 0.99 THEN '2026-12-01T06:00:00.000Z' ELSE '2026-11-20T06:00:00.000Z' END,"
                 " true, '{}' FROM generate_series(0, %s - 1) i", (stations, stations))
    conn.execute("INSERT INTO accounts(account_id, is_fleet) SELECT 'A' || i, i %% 20 = 0"
                 " FROM generate_series(0, %s - 1) i", (accounts,))
    conn.execute("INSERT INTO fleet_owners(account_id, owner_account_id) SELECT 'A' || (i * 40), 'A' || (i * 40 + 1)"
                 " FROM generate_series(0, %s - 1) i", (accounts // 40,))
    restore = _without_indexes(conn, ("point_movements", "sale_lines"))
    # 30 months of history (2024-06 .. 2026-11), ~15% debits, any account at any station.
    month, day, hour = f"({_h(4)} %% 30)", f"(1 + ({_h(4)} / 30) %% 29)", f"(({_h(4)} / 870) %% 24)"
    debit = f"({_h(3)} %% 100 < 15)"
    for low in range(0, movements, chunk):
        conn.execute(
            "INSERT INTO point_movements(movement_id, account_id, station_id, kind, points, occurred_at, event_id)"
            f" SELECT 'M' || i, 'A' || ({_h(1)} %% %(accounts)s), 'st-' || lpad(({_h(2)} %% %(stations)s)::text, 4, '0'),"
            f" CASE WHEN {debit} THEN 'redeem' ELSE 'earn' END,"
            f" CASE WHEN {debit} THEN -(1 + ({_h(3)} / 100) %% 300) ELSE 1 + ({_h(3)} / 100) %% 120 END,"
            f" format('%%s-%%s-%%sT%%s:00:00.000Z', 2024 + (5 + {month}) / 12, lpad(((5 + {month}) %% 12 + 1)::text, 2, '0'),"
            f" lpad({day}::text, 2, '0'), lpad({hour}::text, 2, '0')),"
            f" 'ev-' || ({_h(2)} %% %(stations)s)"
            " FROM generate_series(%(low)s::bigint, %(high)s::bigint - 1) i",
            {"accounts": accounts, "stations": stations, "low": low, "high": min(movements, low + chunk)})
        phase(f"{min(movements, low + chunk):,} movements")
    groups = ("FUEL", "SHOP", "LUBE", "WASH")
    conn.execute("INSERT INTO sale_lines(movement_id, line_no, sale_id, station_id, kind, article_group, amount, points,"
                 " occurred_at) SELECT movement_id, 1, movement_id, station_id, 'earn',"
                 " (ARRAY['" + "','".join(groups) + "'])[1 + abs(hashtext(movement_id)) % 4], points * 100, points,"
                 " occurred_at FROM point_movements WHERE points > 0")
    phase("sale lines")
    for statement in restore:
        conn.execute(statement)
    phase("keys and indexes rebuilt")
    conn.execute("UPDATE accounts a SET balance = t.s FROM (SELECT account_id, sum(points) s FROM point_movements"
                 " GROUP BY 1) t WHERE t.account_id = a.account_id")
    phase("balances")
    conn.execute("RESET maintenance_work_mem")
    conn.execute("RESET max_parallel_maintenance_workers")
    conn.execute("RESET work_mem")
    conn.execute("VACUUM ANALYZE")
    phase("vacuum analyze")


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
            generate(conn, args.accounts, args.movements, args.stations, progress=lambda m: print(m, flush=True))
            print(f"generated {args.accounts:,} accounts, {args.movements:,} movements, {args.stations:,} stations "
                  f"in {time.perf_counter() - started:.0f} s (INSERT ... SELECT generate_series, in the server)")
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
