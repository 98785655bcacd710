"""Hardening benchmarks against the real agent process (issue 12).

1. Peak RSS while 40 attendant PINs are checked at once (40 swipes from a serial card reader on
   a pty, 40 parallel ``POST /v1/swipes/{id}/pin``). Target: under 150 MB. Baselines in the same
   run: the agent's idle RSS, and the same load with ``cards.pins.max_parallel_checks = 16``
   (the most the setting allows; before the bound every request hashed at once).
2. ``GET /v1/health`` latency with 100 SSE streams open (13 tokens); baseline: with none.

    python -m bench hardening [--parallel 40] [--streams 100]
"""
from __future__ import annotations

import argparse
import base64
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.common import KeepAlive, free_port, summary_ms, target_status, wait_http

RSS_TARGET_MB = 150.0
STATION = "bench-st"


def _card(i: int) -> str:
    return f"60123456{i:08d}"


def _prepare(data_dir: Path, attendants: int, tokens: int) -> tuple[dict[str, str], list[str], str]:
    """A station with a PIN bundle, a loyalty directory of ``attendants`` cards and API tokens."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from agent.cards.pin_bundle import build_bundle
    from agent.cards.pins import install_pepper
    from agent.loyalty.directory import AccountIn, CardIn, DirectoryDelta, TierIn
    from agent.station import build_station
    from tests.conftest import make_settings

    key, pepper = Ed25519PrivateKey.generate(), os.urandom(32)
    public = base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    settings = make_settings(data_dir, station={"id": STATION}, cards={"pins": {"bundle_public_key": public}})
    services = build_station(settings)
    try:
        install_pepper(settings.storage.key_dir, pepper)
        now = datetime.now(timezone.utc)
        pins = {f"P-{i:02d}": f"{100000 + i}" for i in range(attendants)}
        services.cards.pins.import_bundle(build_bundle(
            key, version=1, stations=[STATION], issued_at=now - timedelta(hours=1),
            expires_at=now + timedelta(days=1), pins=pins, pepper=pepper))
        services.loyalty.apply_directory_delta(DirectoryDelta(
            seq=1, as_of=now, tiers=[TierIn(tier_id="STD", name="Estándar", multiplier=1)],
            accounts=[AccountIn(account_id=f"A{i}", tier_id="STD") for i in range(attendants)],
            cards=[CardIn(card_number=_card(i), account_id=f"A{i}", role="primary", state="issued",
                          issued_at=now - timedelta(days=10)) for i in range(attendants)]))
        names = [services.tokens.create(f"pos-{i}") for i in range(tokens)]
    finally:
        services.close()
    return pins, names, public


class RunningAgent:
    def __init__(self, data_dir: Path, public_key: str, tty: str, parallel_checks: int) -> None:
        self.port = free_port()
        env = {**os.environ, "LOYALTY_AGENT_STATION__ID": STATION, "LOYALTY_AGENT_DEVICES__SIMULATED": "false",
               "LOYALTY_AGENT_CARDS__PINS__BUNDLE_PUBLIC_KEY": public_key,
               "LOYALTY_AGENT_CARDS__MAGSTRIPE__SERIAL_PORT": tty,
               "LOYALTY_AGENT_CARDS__PINS__MAX_PARALLEL_CHECKS": str(parallel_checks),
               "LOYALTY_AGENT_CARDS__PINS__STATION_MAX_FAILURES": "1000"}
        self.proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data_dir),
                                      "--port", str(self.port)], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_http(self.port, "/v1/health")

    def status_kb(self, field: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _swipe_all(agent: RunningAgent, master: int, token: str, count: int) -> list[str]:
    import json

    client = KeepAlive(agent.port, {"Authorization": f"Bearer {token}"})
    _, body = client.request("GET", "/v1/events?timeout=0")
    after = json.loads(body)["last_seq"]
    for i in range(count):
        os.write(master, f";{_card(i)}=2912101?\r\n".encode())
        time.sleep(0.01)
    sessions: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while len(sessions) < count and time.monotonic() < deadline:
        _, body = client.request("GET", f"/v1/events?after={after}&timeout=5")
        data = json.loads(body)
        for event in data["events"]:
            after = event["seq"]
            if event["type"] == "swipe.created":
                sessions[event["data"]["card_id"]] = event["data"]["session_id"]
    client.close()
    if len(sessions) < count:
        raise RuntimeError(f"only {len(sessions)} of {count} swipes arrived")
    return [sessions[_card(i)] for i in range(count)]


def pin_storm(data_dir: Path, public: str, pins: dict[str, str], token: str, parallel: int,
              parallel_checks: int) -> dict[str, float]:
    master, slave = os.openpty()
    agent = RunningAgent(data_dir, public, os.ttyname(slave), parallel_checks)
    try:
        time.sleep(1.0)  # the serial reader opens the pty
        idle_kb = agent.status_kb("VmRSS")
        sessions = _swipe_all(agent, master, token, parallel)
        barrier = threading.Barrier(parallel)
        statuses: list[int] = []
        attendants = list(pins.items())

        def one(i: int) -> None:
            client = KeepAlive(agent.port, {"Authorization": f"Bearer {token}"})
            attendant, pin = attendants[i]
            barrier.wait()
            status, _ = client.request("POST", f"/v1/swipes/{sessions[i]}/pin",
                                       {"attendant_id": attendant, "pin": pin})
            statuses.append(status)
            client.close()

        threads = [threading.Thread(target=one, args=(i,)) for i in range(parallel)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        time.sleep(0.5)
        return {"idle_mb": idle_kb / 1024, "peak_mb": agent.status_kb("VmHWM") / 1024,
                "after_mb": agent.status_kb("VmRSS") / 1024, "ok": statuses.count(200),
                "busy": statuses.count(503), "other": len([s for s in statuses if s not in (200, 503)]),
                "wall_s": elapsed}
    finally:
        agent.stop()
        os.close(master)
        os.close(slave)


def _open_stream(port: int, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall((f"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                  "Accept: text/event-stream\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("stream refused")
        head += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.split(b"\r\n", 1)[0].decode())
    return sock


def _health_latency(port: int, rounds: int) -> list[float]:
    client = KeepAlive(port)
    samples = []
    for _ in range(rounds):
        t = time.perf_counter()
        status, _ = client.request("GET", "/v1/health")
        samples.append(time.perf_counter() - t)
        assert status == 200, status
    client.close()
    return samples


def health_with_streams(data_dir: Path, public: str, tokens: list[str], streams: int,
                        rounds: int = 300) -> tuple[dict[str, float], dict[str, float]]:
    master, slave = os.openpty()
    agent = RunningAgent(data_dir, public, os.ttyname(slave), 2)
    opened: list[socket.socket] = []
    try:
        _health_latency(agent.port, 30)  # warm-up
        baseline = summary_ms(_health_latency(agent.port, rounds))
        for i in range(streams):
            opened.append(_open_stream(agent.port, tokens[i // 8]))
        loaded = summary_ms(_health_latency(agent.port, rounds))
        return baseline, loaded
    finally:
        for sock in opened:
            sock.close()
        agent.stop()
        os.close(master)
        os.close(slave)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench hardening")
    parser.add_argument("--parallel", type=int, default=40, help="parallel PIN checks")
    parser.add_argument("--streams", type=int, default=100, help="open SSE streams")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        pins, tokens, public = _prepare(data_dir, args.parallel, (args.streams + 7) // 8 + 1)
        bounded = pin_storm(data_dir, public, pins, tokens[-1], args.parallel, 2)
        wide = pin_storm(data_dir, public, pins, tokens[-1], args.parallel, 16)
        print(f"PIN checks, {args.parallel} in parallel (argon2id 19 MiB each):")
        for name, r in (("max_parallel_checks=2 (default)", bounded), ("max_parallel_checks=16 (baseline)", wide)):
            print(f"  {name:36s} idle {r['idle_mb']:6.1f} MB  peak {r['peak_mb']:6.1f} MB  "
                  f"after {r['after_mb']:6.1f} MB  200s {r['ok']:.0f}  503s {r['busy']:.0f}  "
                  f"other {r['other']:.0f}  wall {r['wall_s']:.2f} s")
        print(f"  peak growth over idle: {bounded['peak_mb'] - bounded['idle_mb']:.1f} MB vs "
              f"{wide['peak_mb'] - wide['idle_mb']:.1f} MB (ratio "
              f"{(bounded['peak_mb'] - bounded['idle_mb']) / max(0.1, wide['peak_mb'] - wide['idle_mb']):.2f}); "
              f"target peak < {RSS_TARGET_MB:.0f} MB: {'met' if bounded['peak_mb'] < RSS_TARGET_MB else 'MISSED'}")
        baseline, loaded = health_with_streams(data_dir, public, tokens, args.streams)
        print(f"GET /v1/health, keep-alive, {300} requests:")
        print(f"  no streams (baseline)   p50 {baseline['p50']:6.2f} ms  p99 {baseline['p99']:6.2f} ms")
        print(f"  {args.streams} SSE streams open  p50 {loaded['p50']:6.2f} ms  p99 {loaded['p99']:6.2f} ms  "
              f"(p99 ratio {loaded['p99'] / baseline['p99']:.2f})")
        if bounded["other"]:
            return 1  # answers other than 200/503: a defect at any size
        return target_status(bounded["peak_mb"] < RSS_TARGET_MB)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
