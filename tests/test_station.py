"""The station's parts: what exists with which settings, and what the API says when a part is off.

Real SQLite and the real app; a serial card reader on a real pty where one must be configured.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.lifecycle import Lifecycle
from agent.station import Station, build_station
from tests.conftest import make_settings


@pytest.fixture
def station_with(tmp_path: Path) -> Iterator[Any]:
    built: list[Station] = []

    def build(**sections: dict[str, Any]) -> Station:
        station = build_station(make_settings(tmp_path / f"data{len(built)}", **sections))
        built.append(station)
        return station

    yield build
    for station in built:
        station.close()


def api(station: Station) -> TestClient:
    return TestClient(create_app(station.settings, station), base_url="http://127.0.0.1",
                      headers={"Authorization": f"Bearer {station.tokens.create('pos-1')}",
                               "Accept-Language": "en"})


def test_with_every_device_off_only_the_core_parts_exist(station_with: Any) -> None:
    station = station_with()
    assert station.swipe_sessions is None and station.idcard is None and station.fingerprint is None
    assert station.loyalty is not None  # loyalty is on by default: it needs no device to configure
    assert [name for name, _ in station.parts()] == ["cards", "sync"]
    assert all(isinstance(part, Lifecycle) for _, part in station.parts())
    assert sorted(station.sync.downlink.kinds) == ["directory", "earning_rules", "pin_bundle"]
    health = api(station).get("/v1/health").json()
    assert set(health["components"]) == {"cards", "sync"}


def test_swipe_routes_answer_card_readers_disabled_without_a_reader(station_with: Any) -> None:
    client = api(station_with())
    for method, path in (("GET", "/v1/events?timeout=0"), ("GET", "/v1/swipes/x"),
                         ("POST", "/v1/swipes/x/pin")):
        body = {"attendant_id": "P-01", "pin": "1234"} if method == "POST" else None
        r = client.request(method, path, json=body)
        assert r.status_code == 503, (path, r.text)
        assert r.json()["code"] == "card_readers_disabled" and r.json()["detail"] == "Card readers are not enabled on this agent."


def test_a_configured_reader_enables_the_swipe_routes(station_with: Any) -> None:
    master, slave = os.openpty()
    try:
        station = station_with(cards={"magstripe": {"serial_port": os.ttyname(slave)}})
        assert station.swipe_sessions is station.cards.sessions
        r = api(station).get("/v1/events", params={"timeout": 0})
        assert r.status_code == 200 and r.json()["events"] == []
    finally:
        os.close(master)
        os.close(slave)


def test_loyalty_routes_answer_loyalty_not_configured_when_it_is_off(station_with: Any) -> None:
    station = station_with(loyalty={"enabled": False})
    assert station.loyalty is None
    # Head office's loyalty configuration has nowhere to go: refused as an unknown kind.
    assert station.sync.downlink.kinds == ["pin_bundle"]
    assert station.sync.downlink.handle("earning_rules", b'{"version": 1, "data": {}}').code == "unknown_kind"
    client = api(station)
    for method, path in (("GET", "/v1/rewards"), ("GET", "/v1/accounts/x"), ("POST", "/v1/sales/voids")):
        r = client.request(method, path, json={} if method == "POST" else None)
        assert r.status_code == 503, (path, r.text)
        assert r.json()["code"] == "loyalty_not_configured"
