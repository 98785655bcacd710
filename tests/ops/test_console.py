"""The console's guards and its device tests over the real app (simulated devices: the real
R30x driver over a pty, the real capture code over synthetic frames)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.station import Station, build_station
from tests.conftest import make_settings, wait_until

LOCAL, LAN = ("127.0.0.1", 50001), ("192.168.1.50", 50001)
ACTION = {"X-Console": "1"}


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    built = build_station(make_settings(tmp_path / "data", devices={"simulated": True}))
    yield built
    built.close()


def test_console_only_from_the_station_and_actions_need_the_header(station: Station) -> None:
    app = create_app(station.settings, station)
    lan = TestClient(app, base_url="http://127.0.0.1", client=LAN)
    assert lan.get("/").status_code == 403
    assert lan.post("/console/api/sync", headers=ACTION).status_code == 403
    local = TestClient(app, base_url="http://127.0.0.1", client=LOCAL)
    page = local.get("/")
    assert page.status_code == 200 and "Sincronizar" in page.text and 'lang="es"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert not re.search(r'(src|href)="https?://', page.text)  # nothing from a CDN
    assert local.post("/console/api/sync").status_code == 403  # a cross-site form cannot add X-Console
    answer = local.post("/console/api/sync", headers=ACTION).json()
    assert answer == {"requested": False, "unconfirmed": 0, "message": answer["message"]}
    assert "no hay oficina central configurada" in answer["message"]


def test_device_buttons_talk_to_the_devices(station: Station) -> None:
    client = TestClient(create_app(station.settings, station), base_url="http://127.0.0.1", client=LOCAL, headers=ACTION)
    assert wait_until(lambda: client.get("/console/api/state").json()["devices"]["fingerprint"]["state"] == "up", 10)
    camera = client.post("/console/api/devices/camera/test").json()
    assert camera["ok"] and re.match(r"imagen de 1920x1080, nitidez \d+", camera["message"])
    finger = client.post("/console/api/devices/fingerprint/test").json()
    # The simulated customer touches the sensor only when an enrollment asks: the handshake answers.
    assert finger["ok"] and finger["message"].startswith("lector R307 responde")
    card = client.post("/console/api/devices/card_reader_pcsc/test").json()
    assert card == {"ok": False, "message": "no hay lectores de tarjetas configurados"}
    assert client.post("/console/api/devices/printer/test").json()["ok"] is False


def test_api_docs_are_served_locally_from_the_openapi_document(station: Station) -> None:
    client = TestClient(create_app(station.settings, station), base_url="http://127.0.0.1")
    page = client.get("/docs")
    assert page.status_code == 200
    spec = client.get("/openapi.json").json()
    for path in spec["paths"]:
        assert f"<code>{path}</code>" in page.text.replace("&#x27;", "'"), path
    assert "<script" not in page.text and not re.search(r'(src|href)="https?://', page.text)
