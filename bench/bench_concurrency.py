"""Issue 12, concurrency tail: p50/p99 per route with 1 POS client, then 8 at once, same run.

The real agent process on a store with 20,000 customers; each client is one keep-alive
connection doing a POS mix for ``--seconds``: lookups by document, name searches and durable
creates (2:1:1). The 1-client figures are the baseline; the target is p99 at 8 clients within
3x of 1 client per route.

    python -m bench concurrency [--seconds 20] [--customers 20000]
"""
from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote

from stdnum.cl import rut

from bench.bench_customers import fill, rut_for
from bench.common import KeepAlive, free_port, percentile, spawn, wait_http

TARGET_RATIO = 3.0


def _client(port: int, token: str, seconds: float, start: int, n_customers: int, seed: int,
            out: dict[str, list[float]], lock: threading.Lock) -> None:
    client = KeepAlive(port, {"Authorization": f"Bearer {token}"})
    rng = random.Random(seed)
    mine: dict[str, list[float]] = {"lookup": [], "search": [], "create": []}
    created = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        kind = rng.choice(["lookup", "lookup", "search", "create"])
        if kind == "lookup":
            number = rut.format(rut_for(rng.randrange(n_customers)))
            method, path, body = "GET", f"/v1/customers?document_country=CL&document_type=RUT&document_number={number}", None
        elif kind == "search":
            method, path, body = "GET", f"/v1/customers/search?q={quote(rng.choice(['Peña', 'Soto', 'Rojas']))}", None
        else:
            number = rut_for(start + created)
            created += 1
            method, path = "POST", "/v1/customers"
            body = {"document": {"country": "CL", "type": "RUT", "number": number}, "first_name": "Ana",
                    "first_surname": "Rojas", "phones": [], "consents": {"offers": True}}
        t0 = time.perf_counter()
        status, raw = client.request(method, path, body)
        mine[kind].append(time.perf_counter() - t0)
        if status not in (200, 201):
            raise RuntimeError(f"{method} {path}: {status} {raw[:200]!r}")
    client.close()
    with lock:
        for key, values in mine.items():
            out.setdefault(key, []).extend(values)


def run_clients(port: int, token: str, clients: int, seconds: float, start: int, n_customers: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []
    run = _client

    def _client_or_record(*a: object) -> None:
        try:
            run(*a)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=_client_or_record, args=(port, token, seconds, start + i * 100_000, n_customers, i,
                                                      out, lock)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]!r}")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench concurrency")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--customers", type=int, default=20_000)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    try:
        data = work / "data"
        fill(data, args.customers)
        from agent.config import load_settings
        from agent.station import open_database
        from agent.tokens import TokenStore

        db = open_database(load_settings(None, {"storage": {"data_dir": str(data)}}))
        token = TokenStore(db).create("bench")
        db.close()
        port = free_port()
        proc = spawn(["-m", "agent.cli", "run", "--data-dir", str(data), "--port", str(port)],
                     {"LOYALTY_AGENT_DEVICES__SIMULATED": "false", "LOYALTY_AGENT_LOG_LEVEL": "WARNING"})
        try:
            wait_http(port, "/v1/health")
            run_clients(port, token, 1, 2.0, 9_000_000, args.customers)  # warm-up
            one = run_clients(port, token, 1, args.seconds, 10_000_000, args.customers)
            eight = run_clients(port, token, 8, args.seconds, 20_000_000, args.customers)
        finally:
            proc.terminate()
            proc.wait(20)
        worst = 0.0
        print(f"{args.customers:,} customers; {args.seconds:.0f} s per phase; mix lookup:search:create = 2:1:1")
        print(f"{'route':8s} {'1 client p50/p99 ms':>22s} {'8 clients p50/p99 ms':>24s} {'p99 ratio':>10s}")
        for route in ("lookup", "search", "create"):
            a, b = one.get(route, []), eight.get(route, [])
            ratio = percentile(b, 99) / percentile(a, 99)
            worst = max(worst, ratio)
            print(f"{route:8s} {percentile(a, 50) * 1000:9.2f} / {percentile(a, 99) * 1000:7.2f} ({len(a):5d})"
                  f" {percentile(b, 50) * 1000:9.2f} / {percentile(b, 99) * 1000:7.2f} ({len(b):6d})"
                  f" {ratio:9.2f}x")
        total_one = sum(len(v) for v in one.values()) / args.seconds
        total_eight = sum(len(v) for v in eight.values()) / args.seconds
        print(f"throughput: 1 client {total_one:.0f} req/s, 8 clients {total_eight:.0f} req/s")
        print(f"target: p99 at 8 clients within {TARGET_RATIO:.0f}x of 1 client on every route: worst "
              f"{worst:.2f}x {'met' if worst <= TARGET_RATIO else 'NOT met'}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
