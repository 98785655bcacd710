"""Issue 2: customer lookup and create latency over HTTP with 1,000,000 customers; idle RSS.

Runs the real agent (``loyalty-agent run``) as a subprocess on a store pre-filled with
synthetic customers, drives it over one keep-alive connection, and in the same run drives
a bare uvicorn endpoint (bench/floor_app.py) the same way: the floor. Prints both and the
ratio. Targets: lookup p99 <= 3 ms, durable create p99 <= 10 ms, idle RSS <= 90 MB.

A second agent run on the same store then measures create with head office online (a real
Mosquitto on a free port and the fake head office from tests/fakes acking every event): each
create's event is published and confirmed while the next creates run, so the sync thread's
writes compete with the POS for the single writer. Skipped when Mosquitto is not installed.

    python -m bench customers [--customers N] [--requests N]
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from stdnum.cl import rut

from agent.config import load_settings
from agent.customers.service import search_text
from agent.station import open_database
from bench.common import KeepAlive, free_port, outbox_count, rss_mb, spawn, summary_ms, wait_http

FIRST = ["María", "José", "Ana", "Luis", "Camila", "Pedro", "Valentina", "Jorge", "Sofía", "Diego"]
LAST = ["Peña", "Soto", "González", "Muñoz", "Rojas", "Díaz", "Pérez", "Silva", "Núñez", "Castro"]


def rut_for(i: int) -> str:
    body = str(5_000_000 + i)
    return body + rut.calc_check_digit(body)


def fill(data_dir: Path, n: int) -> None:
    """Bulk-load n customers straight into SQLite (the API path is measured separately)."""
    settings = load_settings(None, {"storage": {"data_dir": str(data_dir)}})
    open_database(settings).close()  # schema and migrations
    conn = sqlite3.connect(settings.storage.database_path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("DROP TRIGGER customers_fts_ai")  # rebuilt in one pass below: much faster
    stamp = "2026-01-01T00:00:00.000Z"
    rng = random.Random(7)
    batch = []
    for i in range(n):
        number = rut_for(i)
        data = {"document": {"country": "CL", "type": "RUT", "number": number, "display": rut.format(number)},
                "kind": "natural", "first_name": rng.choice(FIRST), "first_surname": rng.choice(LAST),
                "second_surname": rng.choice(LAST), "phones": [], "foreigner": False, "consents": {}}
        batch.append((f"00000000-0000-7000-8000-{i:012d}", "CL", "RUT", number, "natural", None,
                      search_text(data), json.dumps(data, ensure_ascii=False), stamp, stamp))
        if len(batch) == 50_000:
            conn.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,1,?,?)", batch)
            conn.commit()
            batch.clear()
    if batch:
        conn.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,1,?,?)", batch)
    conn.execute("INSERT INTO customers_fts(customers_fts) VALUES ('rebuild')")
    conn.execute("CREATE TRIGGER customers_fts_ai AFTER INSERT ON customers BEGIN "
                 "INSERT INTO customers_fts(rowid, search_name) VALUES (new.rowid, new.search_name); END")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def drive_lookups(client: KeepAlive, n_customers: int, requests: int) -> list[float]:
    rng = random.Random(1)
    times = []
    for _ in range(requests):
        number = rut_for(rng.randrange(n_customers))
        path = f"/v1/customers?document_country=CL&document_type=RUT&document_number={rut.format(number)}"
        t0 = time.perf_counter()
        status, _ = client.request("GET", path)
        times.append(time.perf_counter() - t0)
        assert status == 200, status
    return times


def drive_creates(client: KeepAlive, start: int, requests: int) -> list[float]:
    times = []
    for i in range(requests):
        number = rut_for(start + i)
        body = {"document": {"country": "CL", "type": "RUT", "number": number}, "first_name": "Ana",
                "first_surname": "Rojas", "phones": [{"number": "+56 9 8765 4321", "kind": "mobile"}],
                "consents": {"offers": True}}
        t0 = time.perf_counter()
        status, raw = client.request("POST", "/v1/customers", body, {"Idempotency-Key": f"bench-{start + i}"})
        times.append(time.perf_counter() - t0)
        assert status == 201, raw
    return times


def drive_floor(port: int, requests: int) -> list[float]:
    client = KeepAlive(port)
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        client.request("GET", "/")
        times.append(time.perf_counter() - t0)
    client.close()
    return times


def create_with_sync_online(work: Path, token: str, start: int, requests: int) -> tuple[list[float], int] | None:
    """Creates while the agent syncs to a live head office; returns (latencies, events confirmed)."""
    from tests.fakes.head_office import FakeHeadOffice
    from tests.fakes.mosquitto import Mosquitto, mosquitto_binary

    if mosquitto_binary() is None:
        return None
    broker = Mosquitto(work / "broker").start()
    agent = head_office = None
    try:
        head_office = FakeHeadOffice(broker.port, client_id="bench-head-office")
        port = free_port()
        agent = spawn(["-m", "agent.cli", "run", "--data-dir", str(work), "--port", str(port),
                       "--mqtt-url", broker.url, "--station-id", "bench-station"])
        wait_http(port, "/v1/health")
        client = KeepAlive(port, {"Authorization": f"Bearer {token}"})
        # Let the backlog of the offline run drain first: measure steady state, not catch-up.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _unconfirmed(work) > 0:
            time.sleep(0.2)
        backlog = _unconfirmed(work)
        if backlog:
            raise RuntimeError(f"head office did not confirm the offline run's {backlog} events in 120 s")
        times = drive_creates(client, start, requests)
        client.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _unconfirmed(work) > 0:
            time.sleep(0.1)
        confirmed = requests - _unconfirmed(work)
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(30)
        if head_office is not None:
            head_office.close()
        broker.stop()
    return times, confirmed


def _unconfirmed(work: Path) -> int:
    return outbox_count(work / "agent.db", "state != 'confirmed'")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench customers")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-customers-"))
    try:
        t0 = time.perf_counter()
        fill(work, args.customers)
        print(f"filled {args.customers:,} customers in {time.perf_counter() - t0:.1f} s "
              f"({(work / 'agent.db').stat().st_size / 1e6:.0f} MB)")
        settings = load_settings(None, {"storage": {"data_dir": str(work)}})
        db = open_database(settings)
        from agent.tokens import TokenStore
        token = TokenStore(db).create("bench")
        db.close()

        floor_port = free_port()
        floor = spawn(["-m", "bench.floor_app", str(floor_port)])
        port = free_port()
        agent = spawn(["-m", "agent.cli", "run", "--data-dir", str(work), "--port", str(port)])
        try:
            wait_http(floor_port)
            wait_http(port, "/v1/health")
            time.sleep(2)
            idle_rss = rss_mb(agent.pid)
            client = KeepAlive(port, {"Authorization": f"Bearer {token}"})
            drive_lookups(client, args.customers, 200)  # warm-up
            drive_floor(floor_port, 200)
            floor_times = drive_floor(floor_port, args.requests)
            lookup = drive_lookups(client, args.customers, args.requests)
            n_create = max(500, args.requests // 3)
            create = drive_creates(client, args.customers + 10, n_create)
            client.close()
            loaded_rss = rss_mb(agent.pid)
        finally:
            agent.terminate()
            floor.terminate()
            agent.wait(30)
            floor.wait(30)
        online = create_with_sync_online(work, token, args.customers + 10 + n_create, n_create)
        f, lk, cr = summary_ms(floor_times), summary_ms(lookup), summary_ms(create)
        print(f"{'':28s}{'p50 ms':>9s}{'p99 ms':>9s}{'p99/floor':>11s}{'target':>10s}")
        print(f"{'bare uvicorn (floor)':28s}{f['p50']:9.2f}{f['p99']:9.2f}{1:11.1f}{'':>10s}")
        print(f"{'lookup by document':28s}{lk['p50']:9.2f}{lk['p99']:9.2f}{lk['p99'] / f['p99']:11.1f}{'<= 3 ms':>10s}"
              f"  {'OK' if lk['p99'] <= 3 else 'MISS'}")
        print(f"{'create (durable commit)':28s}{cr['p50']:9.2f}{cr['p99']:9.2f}{cr['p99'] / f['p99']:11.1f}{'<= 10 ms':>10s}"
              f"  {'OK' if cr['p99'] <= 10 else 'MISS'}")
        if online is None:
            print("create, head office online: skipped (Mosquitto not installed)")
        else:
            on = summary_ms(online[0])
            print(f"{'create, head office online':28s}{on['p50']:9.2f}{on['p99']:9.2f}{on['p99'] / f['p99']:11.1f}"
                  f"{'<= 10 ms':>10s}  {'OK' if on['p99'] <= 10 else 'MISS'}  ({online[1]}/{len(online[0])} events confirmed)")
        print(f"idle agent RSS: {idle_rss:.1f} MB (target <= 90 MB) {'OK' if idle_rss <= 90 else 'MISS'}; "
              f"after the run: {loaded_rss:.1f} MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
