"""mqtts with a client certificate per station, and a broker ACL that keeps each station in its
own topic subtree (the certificate's CN is the MQTT user name); a broker that uses passwords."""
from __future__ import annotations

import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.store.outbox import append_event
from agent.secret_fields import MASK
from agent.station import build_station, open_database
from tests.conftest import make_settings
from tests.conftest import wait_until as wait
from tests.fakes.head_office import FakeHeadOffice
from tests.fakes.mosquitto import Mosquitto, free_port
from tests.fakes.pki import TestCA
from tests.sync.conftest import STATION, queue_events


def test_station_publishes_over_tls_and_cannot_publish_for_another_station(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "pki")
    server_cert, server_key = ca.issue("broker", server=True)
    station_cert, station_key = ca.issue(STATION)
    other_cert, other_key = ca.issue("st-other")
    ho_cert, ho_key = ca.issue("head-office")
    acl = tmp_path / "acl"
    acl.write_text(
        "user head-office\ntopic readwrite loyalty/v1/#\n\n"
        "pattern write loyalty/v1/stations/%u/#\npattern read loyalty/v1/stations/%u/#\n")
    port = free_port()
    broker = Mosquitto(tmp_path / "broker", port=port, extra_config="\n".join([
        f"listener {port} 127.0.0.1", f"cafile {ca.ca_file}", f"certfile {server_cert}", f"keyfile {server_key}",
        "require_certificate true", "use_identity_as_username true", "allow_anonymous false", f"acl_file {acl}",
    ])).start()
    tls = {"ca_certs": str(ca.ca_file), "certfile": str(ho_cert), "keyfile": str(ho_key)}
    head_office = FakeHeadOffice(port, tls=tls)
    settings = make_settings(tmp_path / "data", station={"id": STATION}, mqtt={
        "url": f"mqtts://127.0.0.1:{port}", "ca_file": str(ca.ca_file), "cert_file": str(station_cert),
        "key_file": str(station_key), "reconnect_min_s": 0.2, "reconnect_max_s": 1.0})
    services = build_station(settings)
    services.start()
    try:
        queue_events(services, 30)
        assert wait(lambda: services.sync.status()["confirmed"] == 30), services.sync.status()
        assert head_office.unique() == 30

        # Another station's certificate cannot publish into this station's event topic.
        rogue = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="rogue", protocol=mqtt.MQTTv5)
        rogue.tls_set(ca_certs=str(ca.ca_file), certfile=str(other_cert), keyfile=str(other_key),
                      cert_reqs=ssl.CERT_REQUIRED)
        rogue.connect("127.0.0.1", port)
        rogue.loop_start()
        assert wait(rogue.is_connected, 10)
        forged = {"station_id": STATION, "events": [{"id": "forged-1", "seq": 999, "type": "customer.created",
                                                     "schema_version": 1, "created_at": "2026-01-01T00:00:00.000Z",
                                                     "clock_synced": True, "payload": {}}]}
        # The same client may publish under its own station...
        own = {**forged, "station_id": "st-other", "events": [{**forged["events"][0], "id": "own-1", "seq": 1}]}
        rogue.publish("loyalty/v1/stations/st-other/events", json.dumps(own), qos=1).wait_for_publish(5)
        assert wait(lambda: "own-1" in head_office.events)
        # ...but not into this station's event topic (Mosquitto refuses it and may drop the client).
        rogue.publish(f"loyalty/v1/stations/{STATION}/events", json.dumps(forged), qos=1)
        time.sleep(1.0)
        queue_events(services, 1)  # a later real event still arrives, the forged one never does
        assert wait(lambda: head_office.unique() == 32)
        assert "forged-1" not in head_office.events
        rogue.loop_stop()
        rogue.disconnect()

        # A client without a certificate is refused outright.
        anonymous = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anon", protocol=mqtt.MQTTv5)
        anonymous.tls_set(ca_certs=str(ca.ca_file), cert_reqs=ssl.CERT_REQUIRED)
        refused = False
        try:
            anonymous.connect("127.0.0.1", port)
            anonymous.loop(timeout=1.0)
            anonymous.loop(timeout=1.0)
            refused = not anonymous.is_connected()
        except (ssl.SSLError, OSError):
            refused = True
        assert refused
    finally:
        services.close()
        head_office.close()
        broker.kill()


def _password_broker(tmp_path: Path, users: dict[str, str]) -> Mosquitto:
    """A broker that admits only the given users, with their passwords (no anonymous clients)."""
    password_file = tmp_path / "passwd"
    password_file.touch(mode=0o600)
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(password_file), user, password], check=True,
                       capture_output=True)
    port = free_port()
    return Mosquitto(tmp_path / "broker", port=port, extra_config="\n".join([
        f"listener {port} 127.0.0.1", "allow_anonymous false", f"password_file {password_file}",
    ])).start()


def test_run_sends_the_real_broker_password_while_check_config_masks_it(tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    password = "s3cr3t-pw"
    broker = _password_broker(tmp_path, {STATION: password, "head-office": "ho-pw"})
    head_office = FakeHeadOffice(broker.port, username="head-office", password="ho-pw")
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_AGENT_")}
    env.update({"LOYALTY_AGENT_DEVICES__SIMULATED": "false", "LOYALTY_AGENT_API__PORT": str(free_port()),
                "LOYALTY_AGENT_STATION__ID": STATION, "LOYALTY_AGENT_MQTT__URL": broker.url,
                "LOYALTY_AGENT_MQTT__USERNAME": STATION, "LOYALTY_AGENT_MQTT__PASSWORD": password,
                # A loopback test broker without TLS: the explicit opt-in a password over mqtt:// needs.
                "LOYALTY_AGENT_MQTT__ALLOW_PLAINTEXT": "true"})
    try:
        # The broker checks passwords: the masked text check-config prints is refused.
        masked = build_station(make_settings(tmp_path / "masked", station={"id": STATION}, mqtt={
            "url": broker.url, "username": STATION, "password": MASK, "reconnect_min_s": 0.2,
            "allow_plaintext": True}))
        masked.start()
        try:
            assert wait(lambda: "Not authorized" in caplog.text, 10), caplog.text
            assert masked.sync.status()["broker"]["state"] != "connected"
        finally:
            masked.close()

        shown = subprocess.run([sys.executable, "-m", "agent.cli", "check-config", "--data-dir", str(data)],
                               env=env, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert password not in shown.stdout and json.loads(shown.stdout)["mqtt"]["password"] == MASK

        agent = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data)], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            online = lambda: any(p.get("state") == "online" for p in head_office.of_topic("/availability"))  # noqa: E731
            assert head_office.wait_for(online, 30), head_office.other
            db = open_database(make_settings(data))
            db.write(lambda c: [append_event(c, "test.event", {"i": i}) for i in range(5)])
            db.close()
            assert head_office.wait_for(lambda: head_office.unique() == 5, 30)
        finally:
            agent.terminate()
            logs = agent.communicate(timeout=20)[1]
        assert password not in logs
    finally:
        head_office.close()
        broker.kill()
