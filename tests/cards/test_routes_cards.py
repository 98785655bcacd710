"""HTTP routes for swipes over the real app (TestClient), with the cards router mounted by the app."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.cards.config import PinSettings
from agent.cards.events import EventHub
from agent.cards.pins import AttendantPins
from agent.cards.sessions import SwipeSessions
from agent.station import build_station
from tests.conftest import make_settings
from tests.cards.test_pins import HO_KEY, PEPPER, Clock, bundle


@pytest.fixture
def client(tmp_path):
    settings = make_settings(tmp_path)
    services = build_station(settings)
    pins = AttendantPins(services.db, station_id="st-1", settings=PinSettings(max_failures=2),
                         pepper=PEPPER, public_key=HO_KEY.public_key(), now=Clock())
    pins.import_bundle(bundle())
    sessions = SwipeSessions(pins, EventHub())
    services.swipe_sessions = sessions
    app = create_app(settings, services)
    token = services.tokens.create("pos-1")
    with TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as c:
        c.sessions = sessions  # type: ignore[attr-defined]
        yield c
    services.close()


def test_long_poll_then_pin(client) -> None:
    assert client.get("/v1/events", params={"timeout": 0}).json()["events"] == []
    session = client.sessions.on_stripe(";6012345678=?")
    body = client.get("/v1/events", params={"after": 0, "timeout": 5}).json()
    assert body["events"][0]["type"] == "swipe.created"
    assert body["events"][0]["data"]["session_id"] == session.id
    r = client.post(f"/v1/swipes/{session.id}/pin", json={"attendant_id": "P-01", "pin": "0000"})
    assert r.status_code == 403 and r.json()["code"] == "attendant_pin_invalid"
    assert r.headers["content-type"].startswith("application/problem+json")
    r = client.post(f"/v1/swipes/{session.id}/pin", json={"attendant_id": "P-01", "pin": "1234"})
    assert r.status_code == 200 and r.json()["state"] == "authorized"
    assert client.get(f"/v1/swipes/{session.id}").json()["attendant_id"] == "P-01"


def test_lockout_over_http_and_unknown_session(client) -> None:
    session = client.sessions.on_stripe(";6012345678=?")
    codes = [client.post(f"/v1/swipes/{session.id}/pin", json={"attendant_id": "X", "pin": "1"}).json()["code"]
             for _ in range(2)]
    assert codes == ["attendant_pin_invalid", "attendant_locked_out"]
    assert client.post("/v1/swipes/nope/pin", json={"attendant_id": "P-01", "pin": "1234"}).status_code == 404


def test_events_need_a_token(client) -> None:
    assert client.get("/v1/events", params={"timeout": 0}, headers={"Authorization": ""}).status_code == 401


def test_one_pos_cannot_pause_the_station_alone(tmp_path) -> None:
    """Station limit 6 wrong PINs: one token gets 2 (a third), then 423 pos_pin_paused, and the
    station still checks PINs for another POS."""
    settings = make_settings(tmp_path)
    services = build_station(settings)
    pins = AttendantPins(services.db, station_id="st-1", pepper=PEPPER, public_key=HO_KEY.public_key(), now=Clock(),
                         settings=PinSettings(station_max_failures=6, station_window_s=600))
    pins.import_bundle(bundle())
    sessions = SwipeSessions(pins, EventHub())
    services.swipe_sessions = sessions
    app = create_app(settings, services)
    bad, good = services.tokens.create("pos-bad"), services.tokens.create("pos-good")
    try:
        with TestClient(app, base_url="http://127.0.0.1") as c:
            def pin(token: str, code: str, attendant: str = "P-01"):  # type: ignore[no-untyped-def]
                session = sessions.on_stripe(";6012345678=?")
                return c.post(f"/v1/swipes/{session.id}/pin", json={"attendant_id": attendant, "pin": code},
                              headers={"Authorization": f"Bearer {token}"})

            answers = [pin(bad, "0000", f"A-{i}") for i in range(6)]  # the station limit, from one POS
            assert [r.json()["code"] for r in answers] == ["attendant_pin_invalid"] * 2 + ["pos_pin_paused"] * 4
            paused = answers[-1]
            assert paused.status_code == 423 and paused.json()["retry_after_s"] > 500
            assert "punto de venta" in paused.json()["detail"]
            assert pin(good, "1234").json()["state"] == "authorized"  # the station was not paused
    finally:
        services.close()
