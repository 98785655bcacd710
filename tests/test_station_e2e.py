"""A whole station, end to end, as deployed: the agent process, a real broker with a fake head
office, a serial card reader on a real pty, the POS over HTTP (SSE for swipes).

Head office sends the attendant PIN bundle and the earning rules over the downlink; an
attendant swipes a card; the POS enrolls the customer, issues the card, authorizes the swipe
with the attendant's PIN and books a sale; the events reach head office and are confirmed.
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

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.cards.pin_bundle import build_bundle
from agent.cards.pins import install_pepper
from tests.conftest import MARIA, free_port, wait_until
from tests.fakes.head_office import FakeHeadOffice
from tests.fakes.mosquitto import Mosquitto, mosquitto_binary

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")

STATION = "st-1"
PAN = "6012345678901234"


class Pos:
    """A POS on one keep-alive connection."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token

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

    def sse(self, out: "queue.Queue[tuple[str, dict[str, Any]]]", stop: threading.Event) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("GET", "/v1/events", headers={"Authorization": f"Bearer {self.token}",
                                                   "Accept": "text/event-stream"})
        response = conn.getresponse()
        event = None
        while not stop.is_set():
            line = response.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event:
                out.put((event, json.loads(line[6:])))
        conn.close()


def wait(predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    return wait_until(predicate, timeout, tolerate=(OSError, KeyError))


def test_swipe_pin_enroll_sale_sync(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    head_office = FakeHeadOffice(broker.port)
    ho_key = Ed25519PrivateKey.generate()
    pepper = os.urandom(32)
    data = tmp_path / "data"
    install_pepper(data / "keys", pepper)
    public = base64.b64encode(ho_key.public_key().public_bytes(serialization.Encoding.Raw,
                                                               serialization.PublicFormat.Raw)).decode()
    master, slave = os.openpty()
    tty.setraw(slave)
    port = free_port()
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[station]
id = "{STATION}"
country = "CL"
[api]
port = {port}
[devices]
simulated = false
[mqtt]
url = "{broker.url}"
reconnect_min_s = 0.2
[cards.pins]
bundle_public_key = "{public}"
[cards.magstripe]
serial_port = "{os.ttyname(slave)}"
""")
    now = datetime.now(timezone.utc)
    bundle = build_bundle(ho_key, version=1, stations=[STATION], issued_at=now - timedelta(hours=1),
                          expires_at=now + timedelta(days=30), pins={"P-07": "4321"}, pepper=pepper)
    head_office.publish(f"loyalty/v1/stations/{STATION}/config/pin_bundle", bundle, retain=True)
    rules = {"version": 1, "data": {"version": "2026-11", "rules": [
        {"kind": "earn", "rule_id": "fuel", "article_group": "FUEL", "basis": "per_unit", "points": "1"}]}}
    head_office.publish(f"loyalty/v1/stations/{STATION}/config/earning_rules", json.dumps(rules), retain=True)

    token = subprocess.run([sys.executable, "-m", "agent.cli", "token", "create", "--name", "pos-1", "--config",
                            str(config), "--data-dir", str(data)], capture_output=True, text=True,
                           check=True).stdout.strip()
    log_file = tmp_path / "agent.log"
    agent = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(config), "--data-dir",
                              str(data)], stdout=subprocess.DEVNULL, stderr=log_file.open("w"))
    stop = threading.Event()
    try:
        pos = Pos(port, token)
        assert wait(lambda: pos.call("GET", "/v1/sync")[1]["downlink"].keys() >= {"pin_bundle", "earning_rules"})
        events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        threading.Thread(target=pos.sse, args=(events, stop), daemon=True).start()
        time.sleep(0.5)

        # The card is issued first: a card the directory does not know is refused at the swipe.
        status, customer = pos.call("POST", "/v1/customers", MARIA, {"Idempotency-Key": "enroll-1"})
        assert status == 201, customer
        status, card = pos.call("POST", "/v1/loyalty/cards", {"card_number": PAN, "customer_id": customer["id"]})
        assert status in (200, 201), card

        swipe = None
        for _ in range(3):  # like an attendant, swipe again if nothing happened (reader still opening)
            os.write(master, f";{PAN}=2512101?\r\n".encode())
            try:
                kind, payload = events.get(timeout=5)
                while kind != "swipe.created":
                    kind, payload = events.get(timeout=5)
                swipe = payload
                break
            except queue.Empty:
                continue
        assert swipe is not None, "no swipe event"
        session_id = swipe["data"]["session_id"] if "data" in swipe else swipe["session_id"]

        sale = {"session_id": session_id, "receipt": {"station": STATION, "pos": "pos-1", "number": "B-1001"},
                "lines": [{"sku": "95", "article_group": "FUEL", "quantity": "40", "amount": "52000"}]}
        status, refused = pos.call("POST", "/v1/sales", sale, {"Idempotency-Key": "sale-1"})
        assert status == 403, refused  # no sale before the attendant's PIN

        status, bad = pos.call("POST", f"/v1/swipes/{session_id}/pin", {"attendant_id": "P-07", "pin": "0000"})
        assert status == 403 and bad["code"] == "attendant_pin_invalid"
        status, ok = pos.call("POST", f"/v1/swipes/{session_id}/pin", {"attendant_id": "P-07", "pin": "4321"})
        assert status == 200 and ok["state"] == "authorized", ok

        status, booked = pos.call("POST", "/v1/sales", sale, {"Idempotency-Key": "sale-1"})
        assert status in (200, 201), booked
        assert booked["points"] == 40 and booked["provisional"] is True  # 40 units x 1 point (head office rules)
        assert booked["partner_miles"] == 40  # María opted in to LATAM Pass with a member number at enrollment

        assert wait(lambda: pos.call("GET", "/v1/sync")[1]["pending"] + pos.call("GET", "/v1/sync")[1]["delivered"] == 0)
        types = {e["type"] for e in head_office.events.values()}
        assert {"customer.created", "pins.bundle_imported", "account.created", "card.issued", "points.earned",
                "partner.accrual"} <= types, types
        assert head_office.gaps(STATION) == []
    finally:
        stop.set()
        agent.terminate()
        try:
            agent.wait(20)
        finally:
            logs = log_file.read_text()
            head_office.close()
            broker.kill()
            os.close(master)
            os.close(slave)
    assert "4321" not in logs and "María" not in logs and PAN not in logs
