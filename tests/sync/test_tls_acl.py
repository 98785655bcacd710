"""mqtts with a client certificate per station, and a broker ACL that keeps each station in its
own topic subtree (the certificate's CN is the MQTT user name)."""
from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.services import build_services
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
    services = build_services(settings)
    services.start()
    try:
        queue_events(services, 30)
        assert wait(lambda: services.extras["sync"].status()["confirmed"] == 30), services.extras["sync"].status()
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
