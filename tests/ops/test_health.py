"""GET /v1/health tells the truth: each reason is produced by the real condition (a refused TCP
connection, an old outbox row, a missing device node, a bundle that expires, a full budget) and
the same verdict reaches head office in the retained MQTT status message."""
from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.cards.pin_bundle import build_bundle
from agent.cards.pins import install_pepper
from agent.store.outbox import append_event
from agent.station import Station, build_station
from tests.conftest import free_port, make_settings, wait_until

PEPPER = bytes(range(32))


def _health(services: Station, **headers: str) -> dict[str, Any]:
    with TestClient(create_app(services.settings, services), base_url="http://127.0.0.1") as client:
        response = client.get("/v1/health", headers=headers)
    assert response.status_code == 200
    return response.json()


def _codes(health: dict[str, Any]) -> list[str]:
    return [r["code"] for r in health["reasons"]]


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Any]:
    built: list[Station] = []

    def make(**sections: Any) -> Station:
        services = build_station(make_settings(tmp_path / "data", **sections))
        built.append(services)
        return services

    yield make
    for services in built:
        services.close()


def test_a_quiet_station_is_ok_and_keeps_the_contract_fields(station: Any) -> None:
    health = _health(station())
    assert health["status"] == "ok" and health["reasons"] == []
    for key in ("version", "station_id", "storage", "components"):
        assert key in health
    assert health["storage"]["state"] == "ok" and health["disk"]["free_bytes"] > 0


def test_head_office_unreachable_only_past_the_threshold(station: Any) -> None:
    # Nothing listens on this port: every connection attempt is a real ECONNREFUSED.
    services = station(mqtt={"url": f"mqtt://127.0.0.1:{free_port()}", "reconnect_min_s": 0.1, "reconnect_max_s": 0.2},
                       monitoring={"head_office_unreachable_after_s": 1.5})
    services.start()
    assert wait_until(lambda: services.sync.publisher.link.snapshot().state == "down", 10)
    assert "head_office_unreachable" not in _codes(_health(services))  # an outage shorter than the threshold
    assert wait_until(lambda: "head_office_unreachable" in _codes(_health(services)), 10)
    health = _health(services)
    assert health["status"] == "degraded"
    reason = next(r for r in health["reasons"] if r["code"] == "head_office_unreachable")
    assert reason["severity"] == "degraded" and "oficina central" in reason["message"]
    assert "ConnectionRefusedError" in reason["detail"]["last_error"]
    english = _health(services, **{"Accept-Language": "en"})
    assert any(r["message"].startswith("Head office unreachable") for r in english["reasons"])


def test_old_backlog_is_reported(station: Any) -> None:
    services = station(monitoring={"backlog_max_age_s": 600})
    services.db.write(lambda c: append_event(c, "test.event", {"n": 1}))
    assert "sync_backlog_old" not in _codes(_health(services))
    old = (datetime.now(timezone.utc) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    services.db.write(lambda c: c.execute("UPDATE outbox SET created_at = ?", (old,)))
    health = _health(services)
    assert "sync_backlog_old" in _codes(health) and health["status"] == "degraded"
    assert next(r for r in health["reasons"] if r["code"] == "sync_backlog_old")["message"].endswith("2 h 0 min.")


def test_disk_budget_high_then_full_then_disk_low(station: Any) -> None:
    services = station(mqtt={"outbox_max_bytes": 2000})
    services.db.write(lambda c: append_event(c, "test.event", {"pad": "x" * 1700}))
    health = _health(services)
    assert _codes(health) == ["disk_budget_high"] and health["status"] == "degraded"
    assert 0.8 <= health["disk"]["outbox_budget_used"] < 1
    services.db.write(lambda c: append_event(c, "test.event", {"pad": "x" * 400}, security=True))  # past the budget
    health = _health(services)
    assert "outbox_full" in _codes(health) and health["status"] == "failing"


def test_low_free_space_is_failing(station: Any) -> None:
    health = _health(station(monitoring={"disk_free_min_bytes": 1 << 60}))
    assert _codes(health) == ["disk_low"] and health["status"] == "failing"


def _public_key(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def test_pin_bundle_missing_then_installed_then_expired(station: Any, tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    install_pepper(tmp_path / "data" / "keys", PEPPER)
    services = station(cards={"pins": {"bundle_public_key": _public_key(key)}}, station={"id": "st-1"})
    assert _codes(_health(services)) == ["pin_bundle_missing"]
    now = datetime.now(timezone.utc)
    services.cards.pins.import_bundle(build_bundle(
        key, version=1, stations=["st-1"], issued_at=now - timedelta(hours=1), expires_at=now + timedelta(seconds=2),
        pins={"P-01": "1234"}, pepper=PEPPER))
    assert _health(services)["status"] == "ok"
    time.sleep(2.1)
    health = _health(services)
    assert _codes(health) == ["pin_bundle_expired"] and "venció" in health["reasons"][0]["message"]


def test_pins_without_the_station_key_are_reported(station: Any) -> None:
    key = Ed25519PrivateKey.generate()
    codes = _codes(_health(station(cards={"pins": {"bundle_public_key": _public_key(key)}})))
    assert codes == ["pin_key_missing", "pin_bundle_missing"]


def test_configured_devices_that_are_missing(station: Any, tmp_path: Path) -> None:
    services = station(fingerprint={"enabled": True, "port": str(tmp_path / "no-such-tty"), "reconnect_every_s": 0.2},
                       idcard={"enabled": True, "camera": str(tmp_path / "no-such-video")})
    assert wait_until(lambda: _health(services)["devices"]["fingerprint"]["state"] == "down", 10)
    health = _health(services)
    missing = {r["detail"]["device"]: r for r in health["reasons"] if r["code"] == "device_missing"}
    assert set(missing) == {"fingerprint", "camera"} and health["status"] == "degraded"
    assert missing["fingerprint"]["detail"]["reason"] == "sensor_disconnected"
    assert health["devices"]["camera"] == {**health["devices"]["camera"], "state": "down", "reason": "device_missing"}
    assert "Lector de huellas: no disponible" in missing["fingerprint"]["message"]


def test_a_camera_whose_node_exists_is_not_reported_before_a_capture(station: Any, tmp_path: Path) -> None:
    replay = tmp_path / "replay.avi"
    replay.write_bytes(b"")  # exists: whether it opens is only known at the first capture
    health = _health(station(idcard={"enabled": True, "camera": str(replay)}))
    assert health["devices"]["camera"]["state"] == "unknown" and health["status"] == "ok"
    assert "opencv" not in " ".join(health["components"]).lower()  # health did not load the capture stack
    assert health["components"]["idcard"]["loaded"] is False
