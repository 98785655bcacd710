"""Sale by document beside sale by swipe, over HTTP, with 1,000,000 customers and 10,000 rules.

Seeds 000 and 003 identify the customer by document at every sale; that path (validate the
typed document, find the customer, their account and their partner opt-in, book) must not be
noticeably slower than a sale by swipe. Measured in one run over one keep-alive connection
to the real app in its own process, interleaved request by request so machine noise hits all
three alike:

- baseline: ``GET /v1/health`` round trip;
- ``POST /v1/sales`` by swipe (``session_id``; the PIN check is a stand-in authorizing any
  ``bench-<card>`` session, as in bench_loyalty);
- ``POST /v1/sales`` by ``customer`` document, typed with dots and dash (``5.000.123-4``).

Target: sale-by-document p99 within 1.2x of sale-by-swipe p99.

    python -m bench sale_document [--customers N] [--rules N] [--sales N]
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from stdnum.cl import rut

from bench.bench_customers import fill, rut_for
from bench.bench_loyalty import GROUPS, _program
from bench.common import KeepAlive, free_port, summary_ms, wait_http

STATION = "BENCH"
# One customer in ten has never earned at this station: a sale by document opens their account.
WITHOUT_ACCOUNT_EVERY = 10


def _link_accounts(db_path: Path, n: int) -> float:
    """Give customers accounts (one primary card each), a third with LATAM Pass opted in."""
    t0 = time.perf_counter()
    at = "2025-01-01T00:00:00.000Z"
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA synchronous=OFF")
    conn.executemany("INSERT OR REPLACE INTO loyalty_tiers(tier_id, name, multiplier, updated_at) VALUES (?,?,?,?)",
                     [("GOLD", "Oro", "1.5", at), ("SILVER", "Plata", "1", at)])
    chunk = 100_000
    for start in range(0, n, chunk):
        ids = [i for i in range(start, min(n, start + chunk)) if i % WITHOUT_ACCOUNT_EVERY]
        conn.executemany(
            "INSERT INTO loyalty_accounts(account_id, customer_id, tier_id, is_fleet, partner_member_id, origin,"
            " created_at, updated_at) VALUES (?, ?, ?, 0, NULL, 'directory', ?, ?)",
            [(f"A{i:08d}", f"00000000-0000-7000-8000-{i:012d}", "GOLD" if i % 2 else "SILVER", at, at) for i in ids])
        conn.executemany(
            "INSERT INTO loyalty_cards(card_number, account_id, role, state, issued_at, first_used_at, updated_at)"
            " VALUES (?, ?, 'primary', 'issued', ?, ?, ?)",
            [(f"{6037990000000000 + i}", f"A{i:08d}", at, at, at) for i in ids])
        conn.commit()
    # Partner opt-in lives in the customer's consents (what the sale reads).
    rows = [(json.dumps({"partner_programs": [{"name": "LATAM Pass", "member_id": f"LP{i}", "value": True,
                                               "at": at, "channel": "pos"}]}), f"00000000-0000-7000-8000-{i:012d}")
            for i in range(0, n, 3)]
    for start in range(0, len(rows), chunk):
        conn.executemany("UPDATE customers SET data = json_set(data, '$.consents', json(?)) WHERE id = ?",
                         rows[start:start + chunk])
        conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - t0


@dataclass(frozen=True)
class _Swipe:
    id: str
    card_id: str
    attendant_id: str


class _AnyBenchSwipe:
    """Stand-in for the swipe sessions: every ``bench-<card>`` session is authorized (the PIN's
    argon2id check is measured by bench_cards, not here), one use per sale as the real ones."""

    def require_authorized_session(self, session_id: str | None, pos: str = "local") -> _Swipe:
        assert session_id is not None
        return _Swipe(session_id, session_id.removeprefix("bench-"), "att-bench")

    @contextmanager
    def use(self, session_id: str | None, pos: str = "local") -> Iterator[_Swipe]:
        yield self.require_authorized_session(session_id, pos)

    def give_back(self, session_id: str) -> None:
        pass


def _lines(rng: random.Random, sku_count: int) -> list[dict[str, str]]:
    lines = []
    for _ in range(3):
        k = rng.randrange(sku_count + 200)
        lines.append({"sku": f"SKU{k:05d}", "article_group": GROUPS[k % len(GROUPS)] if k % 7 else "NOGROUP",
                      "quantity": str(rng.randint(1, 60)), "amount": str(rng.randint(500, 90000))})
    return lines


def _serve(data_dir: str, port: int) -> int:
    """Child process: the real app and services over the prepared store; swipes are the stand-in."""
    import uvicorn

    from agent.api.app import create_app
    from agent.config import load_settings
    from agent.loyalty.service import LoyaltyService
    from agent.station import assemble_station, open_database

    settings = load_settings(None, {"storage": {"data_dir": data_dir}, "station": {"id": STATION},
                                    "devices": {"simulated": False}})
    db = open_database(settings)
    loyalty = LoyaltyService(db, station_id=STATION, sessions=_AnyBenchSwipe(), settings=settings.loyalty,
                             timezone=settings.station.timezone)
    station = assemble_station(settings, db, loyalty=loyalty)
    uvicorn.run(create_app(settings, station), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_sale_document")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--sales", type=int, default=2000, help="requests of each kind")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return _serve(args.serve, args.port)

    from agent.config import load_settings
    from agent.loyalty.service import LoyaltyService
    from agent.station import open_database
    from agent.tokens import TokenStore

    with tempfile.TemporaryDirectory(prefix="bench-saledoc-") as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        fill(data, args.customers)
        print(f"customers: {args.customers:,} loaded in {time.perf_counter() - t0:.1f} s")
        linked = _link_accounts(data / "agent.db", args.customers)
        print(f"accounts: {args.customers - args.customers // WITHOUT_ACCOUNT_EVERY:,} accounts with a primary card, "
              f"one customer in {WITHOUT_ACCOUNT_EVERY} without (opened by their first sale), in {linked:.1f} s")
        db = open_database(load_settings(None, {"storage": {"data_dir": str(data)}}))
        program, sku_count = _program(args.rules)
        LoyaltyService(db, station_id=STATION, sessions=None).set_rule_program(program)  # type: ignore[arg-type]
        print(f"rules: {len(program.rules):,}")
        token = TokenStore(db).create("bench")
        db.close()

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_sale_document", "--serve", tmp, "--port", str(port)],
            env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        try:
            wait_http(port, "/v1/health")
            return _measure(port, token, args, sku_count)
        finally:
            server.terminate()
            server.wait(timeout=20)


def _measure(port: int, token: str, args: argparse.Namespace, sku_count: int) -> int:
    client = KeepAlive(port, {"Authorization": f"Bearer {token}"})
    rng = random.Random(11)
    health: list[float] = []
    swipe: list[float] = []
    document: list[float] = []
    opened = 0
    try:
        for _ in range(50):  # warm-up: imports, first connections, caches
            client.request("GET", "/v1/health")
        for n in range(args.sales):
            t = time.perf_counter()
            status, _ = client.request("GET", "/v1/health")
            health.append(time.perf_counter() - t)
            card_of = rng.randrange(args.customers)
            while card_of % WITHOUT_ACCOUNT_EVERY == 0:
                card_of = rng.randrange(args.customers)
            body = {"session_id": f"bench-{6037990000000000 + card_of}", "lines": _lines(rng, sku_count),
                    "receipt": {"station": STATION, "pos": "P1", "number": f"S{n}"}}
            t = time.perf_counter()
            status, raw = client.request("POST", "/v1/sales", body, {"Idempotency-Key": f"s-{n}"})
            swipe.append(time.perf_counter() - t)
            if status != 201:
                print(f"sale by swipe: unexpected {status}: {raw[:300]!r}")
                return 1
            who = rng.randrange(args.customers)
            opened += who % WITHOUT_ACCOUNT_EVERY == 0
            body = {"customer": {"document_country": "CL", "document_type": "RUT",
                                 "document_number": rut.format(rut_for(who))},
                    "lines": _lines(rng, sku_count), "receipt": {"station": STATION, "pos": "P1", "number": f"D{n}"}}
            t = time.perf_counter()
            status, raw = client.request("POST", "/v1/sales", body, {"Idempotency-Key": f"d-{n}"})
            document.append(time.perf_counter() - t)
            if status != 201 or json.loads(raw)["identified_by"] != "document":
                print(f"sale by document: unexpected {status}: {raw[:300]!r}")
                return 1
    finally:
        client.close()
    rows = [("baseline: GET /v1/health round trip", health), ("sale by swipe (session_id)", swipe),
            ("sale by document (customer RUT)", document)]
    base = summary_ms(health)["p99"]
    for name, samples in rows:
        s = summary_ms(samples)
        print(f"{name:<40} n={len(samples):<5} p50={s['p50']:6.2f} ms  p99={s['p99']:6.2f} ms  "
              f"({s['p99'] / base:.1f}x health p99)")
    ratio = summary_ms(document)["p99"] / summary_ms(swipe)["p99"]
    print(f"  sales by document that opened the customer's account: {opened}")
    print(f"  document p99 / swipe p99: {ratio:.2f}x  target <= 1.2x: {'MET' if ratio <= 1.2 else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
