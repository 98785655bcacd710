"""Head office sees the station's health, devices, disk and PIN bundle in the retained status
message, published by the real publisher through a real Mosquitto started here."""
from __future__ import annotations

from pathlib import Path

import jsonschema
import json
import pytest

from agent.station import build_station
from tests.conftest import make_settings
from tests.fakes.head_office import FakeHeadOffice
from tests.fakes.mosquitto import Mosquitto, mosquitto_binary
from tests.ops.test_health import _public_key

pytestmark = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")
SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "schemas" / "status.json").read_text())


def test_status_message_carries_health_reasons_and_devices(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    broker = Mosquitto(tmp_path / "broker").start()
    head_office = FakeHeadOffice(broker.port)
    settings = make_settings(tmp_path / "data", station={"id": "st-ops"}, mqtt={"url": broker.url},
                             cards={"pins": {"bundle_public_key": _public_key(Ed25519PrivateKey.generate())}},
                             fingerprint={"enabled": True, "port": str(tmp_path / "no-such-tty")})
    services = build_station(settings)
    try:
        services.start()
        assert head_office.wait_for(lambda: any(
            s.get("devices", {}).get("fingerprint", {}).get("state") == "down" for s in head_office.of_topic("/status")), 20)
    finally:
        services.close()
        head_office.close()
        broker.kill()
    status = [s for s in head_office.of_topic("/status") if s["devices"]["fingerprint"]["state"] == "down"][-1]
    jsonschema.validate(status, SCHEMA)
    assert status["health"]["status"] == "degraded"
    codes = {r["code"] for r in status["health"]["reasons"]}
    assert {"pin_key_missing", "pin_bundle_missing", "device_missing"} <= codes
    assert status["pin_bundle"] is None and status["disk"]["free_bytes"] > 0
