"""Issue 12, concurrency tail: p50/p99 per route with 1 POS client, then 8 at once, same run.

The real agent process on a store with 20,000 customers; each client is one keep-alive
connection doing a POS mix for ``--seconds``: lookups by document, name searches and durable
creates (2:1:1). The 1-client figures are the baseline; the target is p99 at 8 clients within
3x of 1 client per route.

By default each client sends its next request as soon as the last is answered (a closed loop, no
think time): that measures the agent saturated, and then the 8-client latency is bounded below by
8 x (1-client throughput / 8-client throughput) whatever the agent does (Little's law). With
``--rate R`` each client sends R requests a second at random (Poisson) times, as POS terminals do,
and latency is counted from when the request was due, not when it could be sent (no coordinated
omission): that measures how much 8 POS slow each other at a load the station really sees.

    python -m bench concurrency [--seconds 20] [--customers 20000] [--clients-as threads|processes] [--rounds 3]
                                [--rate R]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import shutil
import socket
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from stdnum.cl import rut

from bench.bench_customers import fill, rut_for
from bench.common import free_port, percentile, spawn, wait_http

TARGET_RATIO = 3.0


class LeanClient:
    """A minimal HTTP/1.1 keep-alive client (Content-Length bodies only, what these routes send).

    ``http.client`` parses every response's headers with the ``email`` package: with 8 client
    threads in this process that CPU and GIL time was counted in every measured request and
    taken from the agent on a 2-core machine. The agent sees the same bytes either way."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.auth = f"Authorization: Bearer {token}\r\n".encode()
        self.buf = b""

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        raw = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(raw)}\r\n".encode()
        if raw:
            head += b"Content-Type: application/json\r\n"
        self.sock.sendall(head + self.auth + b"\r\n" + raw)
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        header, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = header.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = next(int(line.split(b":", 1)[1]) for line in lines[1:] if line.lower().startswith(b"content-length:"))
        while len(self.buf) < length:
            self._recv()
        payload, self.buf = self.buf[:length], self.buf[length:]
        return status, payload

    def _recv(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the agent closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()


def _client(port: int, token: str, seconds: float, start: int, n_customers: int, seed: int,
            begin_at: float, rate: float = 0.0) -> dict[str, list[float]]:
    """One POS: its own keep-alive connection; starts at wall-clock ``begin_at`` with the others;
    ``rate`` requests a second at Poisson times (0: back to back)."""
    client = LeanClient(port, token)
    rng = random.Random(seed)
    mine: dict[str, list[float]] = {"lookup": [], "search": [], "create": []}
    created = 0
    time.sleep(max(0.0, begin_at - time.time()))
    deadline = time.monotonic() + seconds
    due = time.perf_counter()
    while time.monotonic() < deadline:
        if rate:
            due += rng.expovariate(rate)
            time.sleep(max(0.0, due - time.perf_counter()))
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
        t0 = min(due, time.perf_counter()) if rate else time.perf_counter()  # late: counted from when due
        status, raw = client.request(method, path, body)
        mine[kind].append(time.perf_counter() - t0)
        if status not in (200, 201):
            raise RuntimeError(f"{method} {path}: {status} {raw[:200]!r}")
    client.close()
    return mine


def run_clients(port: int, token: str, clients: int, seconds: float, start: int, n_customers: int,
                mode: str = "threads", rate: float = 0.0) -> dict[str, list[float]]:
    """``clients`` POS at once. As processes, like separate POS machines; as threads (default) of
    this one process, each measured request also waited for the other clients' share of this
    process's GIL (measured: ~10 ms of a 15 ms p50 search at 8 clients was the client's own)."""
    begin_at = time.time() + (3.0 if mode == "processes" else 0.2)  # every client spawned and connected
    args = [(port, token, seconds, start + i * 100_000, n_customers, i, begin_at, rate) for i in range(clients)]
    pool: Executor = (ProcessPoolExecutor(clients, mp_context=multiprocessing.get_context("spawn"))
                      if mode == "processes" else ThreadPoolExecutor(clients))
    with pool:
        results = [f.result() for f in [pool.submit(_client, *a) for a in args]]  # a failing client fails the run
    out: dict[str, list[float]] = {}
    for mine in results:
        for key, values in mine.items():
            out.setdefault(key, []).extend(values)
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench concurrency")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--clients-as", choices=["processes", "threads"], default="threads",
                        help="each POS client a thread of this process (default, as measured before) or a process "
                             "of its own (then 8 busy client processes take more of the 2 cores from the agent)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternate the 1-client and 8-client phases this many times (each seconds/rounds "
                             "long), so both see the same background load on a shared machine")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="requests a second per client at Poisson times (0, the default: back to back, the "
                             "agent saturated)")
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
            mode = args.clients_as
            run_clients(port, token, 1, 2.0, 9_000_000, args.customers, mode)  # warm-up
            one: dict[str, list[float]] = {}
            eight: dict[str, list[float]] = {}
            part = args.seconds / args.rounds
            for r in range(args.rounds):
                for key, values in run_clients(port, token, 1, part, 10_000_000 + r * 10_000, args.customers,
                                               mode, args.rate).items():
                    one.setdefault(key, []).extend(values)
                for key, values in run_clients(port, token, 8, part, 20_000_000 + r * 10_000, args.customers,
                                               mode, args.rate).items():
                    eight.setdefault(key, []).extend(values)
        finally:
            proc.terminate()
            proc.wait(20)
        worst = 0.0
        print(f"{args.customers:,} customers; {args.seconds:.0f} s per phase; mix lookup:search:create = 2:1:1;"
              f" clients as {args.clients_as}; phases alternated {args.rounds}x; "
              + (f"{args.rate:g} requests/s per client at Poisson times" if args.rate else "back to back (saturated)"))
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
