"""What ``/metrics`` costs a sale: POST /v1/sales p99 with metrics on and off, in the same run.

Two API server processes over one prepared database (the loyalty benchmark's directory and
rules): one with ``monitoring.metrics_enabled = true`` (request timing middleware and the
``/metrics`` route), one with it off. Sales alternate between them request by request, so both
see the same machine noise; the baseline is the server without metrics. Also reported: the
time of one ``GET /metrics`` scrape over the same database.

``python -m bench metrics`` or ``python -m bench.bench_metrics --cards 100000 --sales 2000``.
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_loyalty import _AnyBenchSession, _load_directory, _migrations, _pct, _program, _sale_body
from bench.common import KeepAlive, free_port, wait_http


def _report(name: str, samples: list[float], base_p99: float | None = None) -> float:
    p50, p99 = _pct(samples, 50) * 1000, _pct(samples, 99) * 1000
    ratio = f"  ({p99 / (base_p99 * 1000):.3f}x baseline p99)" if base_p99 else ""
    print(f"{name:<44} n={len(samples):<6} p50={p50:7.2f} ms  p99={p99:7.2f} ms{ratio}")
    return _pct(samples, 99)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_metrics")
    parser.add_argument("--cards", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=2_000)
    parser.add_argument("--sales", type=int, default=2000, help="sales per server")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--metrics", choices=("on", "off"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        return _serve(args.serve, args.port, args.metrics == "on")

    from agent.loyalty.service import LoyaltyService
    from agent.store.db import Database
    from agent.tokens import TokenStore

    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        db = Database(Path(tmp) / "agent.db", _migrations())
        _load_directory(db, args.cards)
        program, sku_count = _program(args.rules)
        LoyaltyService(db, station_id="BENCH", sessions=_AnyBenchSession()).set_rule_program(program)
        token = TokenStore(db).create("bench")
        db.close()
        print(f"{args.cards:,} cards, {len(program.rules):,} rules; {args.sales} sales per server, alternating")
        ports = {"on": free_port(), "off": free_port()}
        servers = {name: subprocess.Popen(
            [sys.executable, "-m", "bench.bench_metrics", "--serve", tmp, "--port", str(port), "--metrics", name],
            env=os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parent.parent)}) for name, port in ports.items()}
        try:
            return _measure(ports, token, args, sku_count)
        finally:
            for server in servers.values():
                server.terminate()
                server.wait(timeout=20)


def _measure(ports: dict[str, int], token: str, args: argparse.Namespace, sku_count: int) -> int:
    for port in ports.values():
        wait_http(port, "/v1/health")
    clients = {name: KeepAlive(port, {"Authorization": f"Bearer {token}"}) for name, port in ports.items()}
    samples: dict[str, list[float]] = {"on": [], "off": []}
    rng = random.Random(11)
    for n in range(args.sales):
        order = ("on", "off") if n % 2 else ("off", "on")  # neither always goes first
        for name in order:
            body = _sale_body(rng, args.cards, n, sku_count)
            body["receipt"]["number"] = f"{name}-{n}"
            t = time.perf_counter()
            status, raw = clients[name].request("POST", "/v1/sales", body, {"Idempotency-Key": f"{name}-{n}"})
            samples[name].append(time.perf_counter() - t)
            if status != 201:
                print(f"unexpected {status}: {raw[:300]!r}")
                return 1
    base = _report("baseline: POST /v1/sales, metrics off", samples["off"])
    with_metrics = _report("POST /v1/sales, metrics on", samples["on"], base)
    print(f"  metrics overhead on the sale p99: {(with_metrics - base) * 1000:+.2f} ms "
          f"({(with_metrics / base - 1) * 100:+.1f}%)")
    scrapes = []
    for _ in range(50):
        t = time.perf_counter()
        status, raw = clients["on"].request("GET", "/metrics")
        scrapes.append(time.perf_counter() - t)
        assert status == 200 and b"loyalty_http_request_duration_seconds" in raw
    _report("GET /metrics (one scrape)", scrapes)
    for client in clients.values():
        client.close()
    return 0


def _serve(data_dir: str, port: int, metrics: bool) -> int:
    """Child process: the real app over the prepared database, with or without metrics."""
    import uvicorn

    from agent.api.app import create_app
    from agent.config import Settings
    from agent.loyalty.service import LoyaltyService
    from agent.station import assemble_station
    from agent.store.db import Database

    db = Database(Path(data_dir) / "agent.db", _migrations())
    settings = Settings(storage={"data_dir": Path(data_dir)}, monitoring={"metrics_enabled": metrics})
    station = assemble_station(settings, db, loyalty=LoyaltyService(db, station_id="BENCH", sessions=_AnyBenchSession()))
    uvicorn.run(create_app(settings, station), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
