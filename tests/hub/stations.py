"""Real station agents for the hub tests and the fleet benchmark: ``loyalty-agent run`` processes
with a magstripe reader on a real pty, an attendant PIN bundle and earning rules published
on their downlink, and a POS that swipes, authorizes with the PIN and books sales over HTTP.
(As tests/test_station_e2e.py does for one station.)
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import queue
import subprocess
import sys
import threading
import time
import tty
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from agent.cards.pin_bundle import build_bundle
from agent.cards.pins import install_pepper
from tests.signing import public_b64, signed

ROOT = Path(__file__).resolve().parents[2]
PIN = "4321"
ATTENDANT = "P-07"
RULES = {"version": 1, "data": {"version": "hub-test", "rules": [
    {"kind": "earn", "rule_id": "fuel", "article_group": "FUEL", "basis": "per_unit", "points": "1"}]}}


def publish_retained(port: int, messages: list[tuple[str, bytes | str]]) -> None:
    """Head office's configuration publisher (not part of the hub yet): retained, QoS 1."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ho-config-{os.getpid()}-{time.monotonic_ns()}",
                         protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, body in messages:
            client.publish(topic, body, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


class Station:
    def __init__(self, workdir: Path, station_id: str, broker_port: int, *, ack_timeout_s: float = 5.0) -> None:
        self.id, self.dir, self.broker_port = station_id, workdir, broker_port
        workdir.mkdir(parents=True, exist_ok=True)
        self.data = workdir / "data"
        self.port = _free_port()
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self._slave = slave
        self.key = Ed25519PrivateKey.generate()
        self.pepper = os.urandom(32)
        install_pepper(self.data / "keys", self.pepper)
        public = base64.b64encode(self.key.public_key().public_bytes(serialization.Encoding.Raw,
                                                                    serialization.PublicFormat.Raw)).decode()
        self.config = workdir / "agent.toml"
        self.config.write_text(f"""
[station]
id = "{station_id}"
country = "CL"
[api]
port = {self.port}
[devices]
simulated = false
[mqtt]
url = "mqtt://127.0.0.1:{broker_port}"
reconnect_min_s = 0.2
reconnect_max_s = 1
ack_timeout_s = {ack_timeout_s}
[cards.pins]
bundle_public_key = "{public}"
[sync]
config_public_key = "{public_b64()}"
[cards.magstripe]
serial_port = "{os.ttyname(slave)}"
""")
        self.token = subprocess.run([sys.executable, "-m", "agent.cli", "token", "create", "--name", "pos-1",
                                     "--config", str(self.config), "--data-dir", str(self.data)], cwd=ROOT,
                                    capture_output=True, text=True, check=True).stdout.strip()
        self.proc: subprocess.Popen[bytes] | None = None
        self._events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._receipts = 0
        self._sse_conn: http.client.HTTPConnection | None = None

    def configure_downlink(self) -> None:
        now = datetime.now(timezone.utc)
        bundle = build_bundle(self.key, version=1, stations=[self.id], issued_at=now - timedelta(hours=1),
                              expires_at=now + timedelta(days=30), pins={ATTENDANT: PIN}, pepper=self.pepper)
        base = f"loyalty/v1/stations/{self.id}/config"
        publish_retained(self.broker_port, [(f"{base}/pin_bundle", bundle), (f"{base}/earning_rules", signed("earning_rules", RULES))])

    def start(self) -> "Station":
        self.log = self.dir / "agent.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(self.config),
                                      "--data-dir", str(self.data)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=self.log.open("a"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "/v1/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        threading.Thread(target=self._sse, daemon=True).start()
        return self

    def wait_downlink(self, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.call("GET", "/v1/sync")[1]["downlink"].keys() >= {"pin_bundle", "earning_rules"}:
                return True
            time.sleep(0.2)
        return False

    def stop(self) -> None:
        self._stop.set()
        if self.proc and self.proc.poll() is None:
            # The agent's graceful stop waits for the open event stream; its data is durable either way.
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                                  **(headers or {})})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    def _sse(self) -> None:
        while not self._stop.is_set():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=3600)
                self._sse_conn = conn
                conn.request("GET", "/v1/events", headers={"Authorization": f"Bearer {self.token}",
                                                           "Accept": "text/event-stream"})
                response = conn.getresponse()
                event = None
                while not self._stop.is_set():
                    line = response.readline().decode()
                    if not line:
                        break
                    line = line.rstrip("\n")
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: ") and event:
                        self._events.put((event, json.loads(line[6:])))
            except OSError:
                time.sleep(0.3)

    def authorized_session(self, pan: str) -> str:
        """Swipe ``pan`` on the reader and type the attendant's PIN: an authorized session id."""
        for _ in range(5):  # like an attendant: swipe again if nothing happened
            os.write(self.master, f";{pan}=2512101?\r\n".encode())
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    kind, payload = self._events.get(timeout=0.5)
                except queue.Empty:
                    continue
                if kind == "swipe.created":
                    session = payload["data"]["session_id"] if "data" in payload else payload["session_id"]
                    status, body = self.call("POST", f"/v1/swipes/{session}/pin", {"attendant_id": ATTENDANT, "pin": PIN})
                    assert status == 200, body
                    return session
        raise AssertionError(f"station {self.id}: no swipe event")

    def sale(self, pan: str, litres: int) -> dict[str, Any]:
        session = self.authorized_session(pan)
        self._receipts += 1
        sale = {"session_id": session, "receipt": {"station": self.id, "pos": "pos-1", "number": f"R-{self._receipts}"},
                "lines": [{"sku": "95", "article_group": "FUEL", "quantity": str(litres), "amount": str(litres * 1300)}]}
        status, booked = self.call("POST", "/v1/sales", sale, {"Idempotency-Key": f"sale-{self.id}-{self._receipts}"})
        assert status in (200, 201), booked
        return booked

    def sync(self) -> dict[str, Any]:
        return self.call("GET", "/v1/sync")[1]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
