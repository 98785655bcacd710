"""Central administration, end to end: ``loyalty-hub`` commands (real processes) author and
publish signed configuration over a real Mosquitto to a real ``loyalty-agent run`` process,
with the hub's data in a real PostgreSQL. Nothing is hand-signed by the test."""
from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent.cards.config import PinSettings
from agent.cards.pins import AttendantPins, load_pepper
from agent.cards.pin_bundle import load_public_key
from agent.errors import AgentError
from agent.store.db import Database
from tests.conftest import free_port, wait_until
from tests.fakes.mosquitto import Mosquitto
from tests.hub.conftest import ROOT, needs_services

pytestmark = [needs_services, pytest.mark.slow]
STATION = "st-central-1"
PROGRAM = {"label": "2026-11", "timezone": "America/Santiago",
           "earn": [{"rule_id": "fuel", "article_group": "FUEL", "basis": "per_unit", "points": "1"}],
           "promotions": [{"promotion_id": "premium-x2", "factor": "2", "valid_from": "2026-01-01",
                           "valid_to": "2099-12-31", "skus": ["PREMIUM", "PREMIUM-95"]}],
           "first_use_bonus": {"rule_id": "welcome", "factor": "3", "within_days": 30}}
REWARDS = [{"reward_id": "MUG", "name": "Taza", "points_cost": 900, "delivery": "immediate", "low_threshold": 2}]
TIERS = [{"tier_id": "GOLD", "name": "Oro", "multiplier": "1.5"}]


class HubCli:
    def __init__(self, tmp: Path, database: str, mqtt_url: str) -> None:
        self.key = tmp / "ho" / "signing.pem"
        self.env = {**os.environ, "LOYALTY_HUB_CENTRAL__SIGNING_KEY_FILE": str(self.key),
                    "LOYALTY_HUB_CENTRAL__PEPPER_DIR": str(tmp / "ho" / "peppers"),
                    "LOYALTY_HUB_CENTRAL__ACTOR": "test:supervisor"}
        self.database, self.mqtt_url = database, mqtt_url

    def __call__(self, *args: str, stdin: str = "", mqtt: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "hub.cli", *args, "--database-url", self.database]
        if mqtt:
            argv += ["--mqtt-url", self.mqtt_url]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=self.env, cwd=ROOT, timeout=120)


class Agent:
    def __init__(self, tmp: Path, broker: Mosquitto, public_key: str) -> None:
        self.data, self.port = tmp / "station" / "data", free_port()
        self.config = tmp / "station" / "agent.toml"
        self.config.write_text(f"""
[station]
id = "{STATION}"
country = "CL"
[api]
port = {self.port}
[devices]
simulated = false
[mqtt]
url = "{broker.url}"
reconnect_min_s = 0.2
[sync]
config_public_key = "{public_key}"
[cards.pins]
bundle_public_key = "{public_key}"
""")
        self.token = subprocess.run([sys.executable, "-m", "agent.cli", "token", "create", "--name", "pos-1", "--config",
                                     str(self.config), "--data-dir", str(self.data)], capture_output=True, text=True,
                                    check=True, cwd=ROOT).stdout.strip()
        self.proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--config", str(self.config),
                                      "--data-dir", str(self.data)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=(tmp / "agent.log").open("w"))

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            conn.close()

    def downlink(self) -> dict[str, Any]:
        return self.call("GET", "/v1/sync")[1]["downlink"]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def pins(self, public_key: str) -> AttendantPins:
        """The agent's own verifier over the agent's own database (after the agent stopped)."""
        return AttendantPins(Database(self.data / "agent.db"), station_id=STATION, settings=PinSettings(),
                             pepper=load_pepper(self.data / "keys"), public_key=load_public_key(public_key))


def wait(predicate: Any, timeout: float = 30) -> bool:
    return wait_until(predicate, timeout, tolerate=(OSError, KeyError, TypeError))


@pytest.fixture
def agent_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.stop()


def test_hub_authors_signs_and_publishes_what_the_real_agent_applies(tmp_path: Path, database: str,
                                                                       agent_broker: Mosquitto) -> None:
    hub = HubCli(tmp_path, database, agent_broker.url)
    generated = hub("keys", "generate", "--out", str(hub.key), mqtt=False)
    assert generated.returncode == 0, generated.stderr
    public = generated.stdout.strip()
    assert hub("keys", "generate", "--out", str(hub.key), mqtt=False).returncode == 2  # never replaced

    station_keys = tmp_path / "station" / "data" / "keys"
    assert hub("station", "add", STATION, "--name", "Estación Centro", "--point-value", "1.25",
               "--install-dir", str(station_keys), mqtt=False).returncode == 0
    assert hub("attendant", "add", STATION, "P-07", "--name", "Ana").returncode == 0
    short = hub("attendant", "set-pin", STATION, "P-07", stdin="482\n")
    assert short.returncode == 2 and "entre 4 y 8 dígitos" in short.stderr
    assert "482" not in short.stderr
    trivial = hub("--lang", "en", "attendant", "set-pin", STATION, "P-07", stdin="1234\n")
    assert trivial.returncode == 2 and "too easy" in trivial.stderr
    assert hub("attendant", "set-pin", STATION, "P-07", stdin="4817\n").returncode == 0
    assert hub("attendant", "add", STATION, "P-08", "--name", "Luis").returncode == 0
    assert hub("attendant", "set-pin", STATION, "P-08", stdin="5092\n").returncode == 0

    (tmp_path / "program.json").write_text(json.dumps(PROGRAM))
    (tmp_path / "rewards.json").write_text(json.dumps(REWARDS))
    (tmp_path / "tiers.json").write_text(json.dumps(TIERS))
    for kind in ("program", "rewards", "tiers"):
        done = hub("config", "set", kind, str(tmp_path / f"{kind}.json"), mqtt=False)
        assert done.returncode == 0, done.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"reward_id": "MUG", "name": "Taza", "points_cost": -5, "delivery": "immediate"}]))
    refused = hub("config", "set", "rewards", str(bad), mqtt=False)
    assert refused.returncode == 2 and "0.points_cost" in refused.stderr
    assert hub("config", "publish").returncode == 0

    agent = Agent(tmp_path, agent_broker, public)
    try:
        assert wait(lambda: agent.downlink().keys() >= {"pin_bundle", "earning_rules", "directory"}), agent.downlink()
        assert agent.downlink()["pin_bundle"]["version"] == 2  # one bundle per PIN set
        sale = {"lines": [{"sku": "DIESEL", "article_group": "FUEL", "quantity": "40", "amount": "40000"},
                          {"sku": "PREMIUM", "article_group": "FUEL", "quantity": "10", "amount": "12000"}]}
        status, evaluation = agent.call("POST", "/v1/sales/simulate", sale)
        assert status == 200 and evaluation["total_points"] == 40 + 20
        assert evaluation["program_version"] == "2026-11"
        assert [r["reward_id"] for r in agent.call("GET", "/v1/rewards")[1]["items"]] == ["MUG"]

        # Lock P-08: a new bundle without P-08 reaches the running station.
        assert hub("attendant", "lock", STATION, "P-08").returncode == 0
        assert wait(lambda: agent.downlink()["pin_bundle"]["version"] == 3)
    finally:
        agent.stop()
    pins = agent.pins(public)
    pins.verify("P-07", "4817")
    with pytest.raises(AgentError):
        pins.verify("P-08", "5092")  # locked at head office: not in the bundle
    with psycopg.connect(database) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_log WHERE actor = 'test:supervisor' ORDER BY audit_id")]
        bundle_text = " ".join(r[0] for r in conn.execute("SELECT body FROM pin_bundles"))
    assert actions.count("pin_bundle.published") == 3 and "attendant.locked" in actions
    assert "4817" not in bundle_text and "5092" not in bundle_text


def test_a_separate_pin_key_signs_the_bundles_and_only_them(tmp_path: Path, database: str,
                                                           agent_broker: Mosquitto) -> None:
    import queue
    from datetime import datetime, timezone

    from agent.cards.pin_bundle import PinBundleError, verify_bundle
    from agent.queue.signed_config import ConfigVerifier
    from hub.central.keys import load_signing_key
    from tests.hub.test_scheduled import client

    hub = HubCli(tmp_path, database, agent_broker.url)
    pin_key_file = tmp_path / "ho" / "pins.pem"
    config_public = hub("keys", "generate", "--out", str(hub.key), mqtt=False).stdout.strip()
    pin_public = hub("keys", "generate", "--out", str(pin_key_file), mqtt=False).stdout.strip()
    hub.env["LOYALTY_HUB_CENTRAL__PIN_SIGNING_KEY_FILE"] = str(pin_key_file)
    assert hub("keys", "public", mqtt=False).stdout.strip() == config_public
    assert hub("keys", "public", "--pin", mqtt=False).stdout.strip() == pin_public != config_public
    assert hub("station", "add", STATION, "--name", "Centro", "--point-value", "1", mqtt=False).returncode == 0
    assert hub("attendant", "add", STATION, "P-07", "--name", "Ana").returncode == 0
    assert hub("attendant", "set-pin", STATION, "P-07", stdin="4817\n").returncode == 0
    (tmp_path / "rewards.json").write_text(json.dumps(REWARDS))
    assert hub("config", "set", "rewards", str(tmp_path / "rewards.json"), mqtt=False).returncode == 0
    assert hub("config", "publish", "--only", "catalog").returncode == 0

    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    watcher = client(agent_broker.port, received)  # retained: both are waiting for a station
    watcher.subscribe(f"loyalty/v1/stations/{STATION}/config/+", qos=1)
    try:
        got = dict(received.get(timeout=10) for _ in range(2))
    finally:
        watcher.loop_stop()
        watcher.disconnect()
    bundle = got[f"loyalty/v1/stations/{STATION}/config/pin_bundle"]
    now = datetime.now(timezone.utc)
    pin_key, config_key = load_signing_key(pin_key_file), load_signing_key(hub.key)
    assert list(verify_bundle(bundle, pin_key.public_key(), station_id=STATION, now=now).attendants) == ["P-07"]
    with pytest.raises(PinBundleError):
        verify_bundle(bundle, config_key.public_key(), station_id=STATION, now=now)
    directory = got[f"loyalty/v1/stations/{STATION}/config/directory"]
    ConfigVerifier(config_key.public_key()).unwrap("directory", directory)
    with pytest.raises(AgentError):
        ConfigVerifier(pin_key.public_key()).unwrap("directory", directory)
