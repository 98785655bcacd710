"""One PIN entry authorizes one operation, for the POS that entered it; spraying is stopped.

Over the real app (TestClient), the real swipe sessions and attendant PINs (argon2id, SQLite)
and the real loyalty service: nothing here is a stand-in.
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.cards.config import PinSettings
from agent.cards.events import EventHub
from agent.cards.pins import AttendantPins
from agent.cards.sessions import SwipeSessions
from agent.config import Settings
from agent.errors import AgentError
from agent.loyalty.service import LoyaltyService
from agent.station import assemble_station
from agent.store.db import Database
from tests.cards.test_pins import HO_KEY, PEPPER, Clock, bundle, outbox
from tests.loyalty_fixtures import STATION, base_delta, migrations, program
from tests.loyalty_fixtures import Clock as LoyaltyClock

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)


def sale(number: str, session_id: str) -> dict:
    return {"session_id": session_id, "receipt": {"station": STATION, "pos": "P1", "number": number},
            "lines": [{"sku": "PREMIUM95", "article_group": "FUEL", "quantity": "40", "amount": "52000"}]}


class Station:
    """The card and loyalty side of one station over a real database, and two POS clients."""

    def __init__(self, tmp_path, *, uses: int = 1, pin_settings: PinSettings | None = None) -> None:
        self.db = Database(tmp_path / "agent.db", migrations=migrations())
        self.pin_clock = Clock()
        self.pins = AttendantPins(self.db, station_id=STATION, settings=pin_settings or PinSettings(),
                                  pepper=PEPPER, public_key=HO_KEY.public_key(), now=self.pin_clock)
        self.pins.import_bundle(bundle(stations=(STATION,)))
        self.sessions = SwipeSessions(self.pins, EventHub(), authorized_uses=uses, pin_attempts_per_swipe=3)
        self.loyalty = LoyaltyService(self.db, station_id=STATION, sessions=self.sessions,
                                      clock=LoyaltyClock(NOW))
        self.loyalty.set_rule_program(program())
        self.loyalty.apply_directory_delta(base_delta(NOW))
        self.sessions.card_gate = self.loyalty.card_refusal
        settings = Settings(storage={"data_dir": tmp_path}, cards={"pins": (pin_settings or PinSettings()).model_dump()})
        services = assemble_station(settings, self.db, loyalty=self.loyalty, swipe_sessions=self.sessions)
        self.app = create_app(settings, services)
        self.tokens = {name: services.tokens.create(name) for name in ("pos-1", "pos-2")}

    def client(self, name: str) -> TestClient:
        return TestClient(self.app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {self.tokens[name]}"})

    def swipe(self, card: str = "C1000") -> str:
        session = self.sessions.on_stripe(f";{card}=?") if card.isdigit() else self.sessions.open(
            card_id=card, source="magstripe", reader="test", card_type="track2")
        assert session is not None
        return session.id


@pytest.fixture
def station(tmp_path):
    built = Station(tmp_path)
    yield built
    built.db.close()


def test_one_pin_authorizes_one_sale_only_for_the_pos_that_entered_it(station) -> None:
    pos1, pos2 = station.client("pos-1"), station.client("pos-2")
    swipe = station.swipe()
    r = pos1.post(f"/v1/swipes/{swipe}/pin", json={"attendant_id": "P-01", "pin": "1234"})
    assert r.status_code == 200 and r.json()["uses_left"] == 1
    other = pos2.post("/v1/sales", json=sale("1", swipe))
    assert other.status_code == 403 and other.json()["code"] == "swipe_session_other_pos"
    assert pos2.get(f"/v1/loyalty/swipes/{swipe}").status_code == 403  # nor read the balance with it
    first = pos1.post("/v1/sales", json=sale("1", swipe), headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201, first.text
    second = pos1.post("/v1/sales", json=sale("2", swipe))
    assert second.status_code == 403 and second.json()["code"] == "swipe_authorization_used"
    assert "ya se usó" in second.json()["detail"] and "PIN" in second.json()["detail"]
    redeem = pos1.post("/v1/rewards/redemptions", json={"session_id": swipe, "reward_id": "MUG"})
    assert redeem.status_code == 403 and redeem.json()["code"] == "swipe_authorization_used"
    # A retry of the booked sale still replays: it spends nothing.
    again = pos1.post("/v1/sales", json=sale("1", swipe), headers={"Idempotency-Key": "k1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert len(outbox(station.db, "points.earned")) == 1


def test_a_refused_sale_does_not_spend_the_pin(station) -> None:
    pos1 = station.client("pos-1")
    swipe = station.swipe()
    assert pos1.post(f"/v1/swipes/{swipe}/pin", json={"attendant_id": "P-01", "pin": "1234"}).status_code == 200
    wrong_station = sale("1", swipe)
    wrong_station["receipt"]["station"] = "OTHER"
    assert pos1.post("/v1/sales", json=wrong_station).status_code == 422
    assert pos1.post("/v1/sales", json=sale("1", swipe)).status_code == 201


def test_the_number_of_operations_per_pin_is_configurable(tmp_path) -> None:
    station = Station(tmp_path, uses=2)
    try:
        pos1 = station.client("pos-1")
        swipe = station.swipe()
        assert pos1.post(f"/v1/swipes/{swipe}/pin", json={"attendant_id": "P-01", "pin": "1234"}).status_code == 200
        assert pos1.post("/v1/sales", json=sale("1", swipe)).status_code == 201
        assert pos1.post("/v1/sales", json=sale("2", swipe)).status_code == 201
        assert pos1.post("/v1/sales", json=sale("3", swipe)).json()["code"] == "swipe_authorization_used"
    finally:
        station.db.close()


def test_blocked_cards_are_refused_before_the_pin_prompt_and_unknown_ones_before_the_pin_check(station) -> None:
    hub = station.sessions.hub
    station.loyalty.block_card("FLEET-OWNER", "lost")
    assert station.sessions.open(card_id="FLEET-OWNER", source="magstripe", reader="r", card_type="track2") is None
    refused = hub.since(0)[0][-1]
    assert refused.type == "swipe.refused" and refused.data["code"] == "card_blocked"
    # A card not issued yet gets a session the POS can issue it with, but no PIN check.
    unknown = station.sessions.open(card_id="NOPE-1", source="magstripe", reader="r", card_type="track2")
    assert unknown is not None and unknown.public()["card_status"] == "unknown"
    r = station.client("pos-1").post(f"/v1/swipes/{unknown.id}/pin", json={"attendant_id": "P-01", "pin": "1234"})
    assert r.status_code == 404 and r.json()["code"] == "card_unknown"
    # Blocked between the swipe and the PIN: refused without a PIN check (no failure counted).
    swipe = station.swipe("C1000")
    station.loyalty.block_card("C1000", "stolen")
    r = station.client("pos-1").post(f"/v1/swipes/{swipe}/pin", json={"attendant_id": "P-01", "pin": "1234"})
    assert r.status_code == 409 and r.json()["code"] == "card_blocked"
    assert station.db.read(lambda c: c.execute("SELECT COUNT(*) FROM cards_pin_failures").fetchone()[0]) == 0


def test_wrong_pins_on_one_swipe_close_it(station) -> None:
    pos1 = station.client("pos-1")
    swipe = station.swipe()
    codes = [pos1.post(f"/v1/swipes/{swipe}/pin", json={"attendant_id": f"P-0{i}", "pin": "0000"}).json()["code"]
             for i in range(4)]
    assert codes == ["attendant_pin_invalid"] * 3 + ["swipe_session_not_found"]
    assert station.sessions.hub.since(0)[0][-1].type == "swipe.closed"


def test_a_pin_check_at_a_time_per_swipe(station) -> None:
    swipe = station.swipe()
    station.pins._slots.acquire()  # every argon2 slot busy: the first check waits inside verify
    first: list[BaseException | None] = []
    worker = threading.Thread(target=lambda: first.append(_attempt(station, swipe, "1234")))
    worker.start()
    try:
        assert _wait_for(lambda: swipe in station.sessions._checking)
        second = _attempt(station, swipe, "9999")
        assert isinstance(second, AgentError) and second.code == "swipe_pin_in_progress"
    finally:
        station.pins._slots.release()
        worker.join()
    assert first == [None]


def _attempt(station: Station, swipe: str, pin: str) -> BaseException | None:
    try:
        station.sessions.authorize(swipe, "P-01", pin)
    except AgentError as exc:
        return exc
    return None


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    from tests.conftest import wait_until

    return wait_until(predicate, timeout)


def test_spraying_one_pin_over_many_attendant_codes_pauses_the_station(tmp_path) -> None:
    settings = PinSettings(station_max_failures=4, station_window_s=600, station_lockout_s=120)
    station = Station(tmp_path, pin_settings=settings)
    try:
        for i in range(3):
            with pytest.raises(AgentError) as info:
                station.pins.verify(f"X-{i}", "1234")
            assert info.value.code == "attendant_pin_invalid"
        with pytest.raises(AgentError):
            station.pins.verify("X-3", "1234")  # the 4th failure in the window
        with pytest.raises(AgentError) as paused:
            station.pins.verify("P-01", "1234")  # even a right PIN waits
        assert paused.value.code == "station_pin_paused" and paused.value.status == 423
        assert "Demasiados PIN incorrectos" in paused.value.es
        assert outbox(station.db, "station.pin_paused")[0]["failed_attempts"] == 4
        restarted = AttendantPins(station.db, station_id=STATION, settings=settings, pepper=PEPPER,
                                  public_key=HO_KEY.public_key(), now=station.pin_clock)
        with pytest.raises(AgentError) as still:
            restarted.verify("P-01", "1234")
        assert still.value.code == "station_pin_paused"
        station.pin_clock.t += 121
        restarted.verify("P-01", "1234")
        # Over HTTP the pause is a 423 with Retry-After.
        station.pin_clock.t += 601
        for i in range(4):
            with pytest.raises(AgentError):
                restarted.verify(f"Y-{i}", "0000")
        swipe = station.swipe()
        r = station.client("pos-1").post(f"/v1/swipes/{swipe}/pin", json={"attendant_id": "P-01", "pin": "1234"})
        assert r.status_code == 423 and r.json()["code"] == "station_pin_paused" and int(r.headers["Retry-After"]) > 0
    finally:
        station.db.close()


def test_a_correct_pin_does_not_reset_the_escalation(tmp_path) -> None:
    settings = PinSettings(max_failures=2, lockout_base_s=60, lockout_max_s=10_000)
    station = Station(tmp_path, pin_settings=settings)
    try:
        pins = station.pins
        for _ in range(2):
            with pytest.raises(AgentError):
                pins.verify("P-01", "0000")
        station.pin_clock.t += 61
        pins.verify("P-01", "1234")  # the attendant's own PIN between guesses
        for _ in range(2):
            with pytest.raises(AgentError):
                pins.verify("P-01", "0000")
        assert [a["locked_for_s"] for a in outbox(station.db, "attendant.locked_out")] == [60, 120]
        # After lockout_forget_s without a failure the escalation starts over.
        station.pin_clock.t += 121 + settings.lockout_forget_s
        for _ in range(2):
            with pytest.raises(AgentError):
                pins.verify("P-01", "0000")
        assert outbox(station.db, "attendant.locked_out")[-1]["locked_for_s"] == 60
    finally:
        station.db.close()


def test_pin_checks_beyond_the_parallel_limit_get_503_with_retry_after(tmp_path) -> None:
    station = Station(tmp_path, pin_settings=PinSettings(max_parallel_checks=1, check_wait_s=0.2))
    try:
        swipe = station.swipe()
        slots = station.app.state.pin_slots
        slots.held = slots.size  # every slot taken by other requests
        r = station.client("pos-1").post(f"/v1/swipes/{swipe}/pin", json={"attendant_id": "P-01", "pin": "1234"})
        assert r.status_code == 503 and r.json()["code"] == "pin_checks_busy" and r.headers["Retry-After"] == "1"
        slots.held = 0
        assert station.sessions.get(swipe).state == "pending"  # nothing was counted or authorized
        # The same bound inside the service, for callers that are not the API.
        station.pins._slots.acquire()
        try:
            with pytest.raises(AgentError) as info:
                station.pins.verify("P-01", "1234")
            assert info.value.code == "pin_checks_busy"
        finally:
            station.pins._slots.release()
        ok = station.client("pos-1").post(f"/v1/swipes/{swipe}/pin", json={"attendant_id": "P-01", "pin": "1234"})
        assert ok.status_code == 200
    finally:
        station.db.close()


@pytest.mark.parametrize("attendant", ["P-01\n<0>forged", "P 01", "P-01\x1b[2J", "á", "x" * 33, ""])
def test_attendant_codes_are_letters_digits_dash_underscore(station, attendant: str) -> None:
    swipe = station.swipe()
    r = station.client("pos-1").post(f"/v1/swipes/{swipe}/pin", json={"attendant_id": attendant, "pin": "1234"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "attendant_id"
    with pytest.raises(AgentError) as info:
        station.pins.verify(attendant, "1234")
    assert info.value.code == "attendant_id_invalid"
    assert station.sessions.get(swipe).state == "pending"
