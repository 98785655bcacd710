"""Swipe sessions and the event hub; one end-to-end tap over the real pcscd stack."""
from __future__ import annotations

import threading

import pytest

from agent.cards.config import PinSettings
from agent.cards.events import EventHub
from agent.cards.pins import AttendantPins
from agent.cards.sessions import SwipeSessions
from agent.errors import AgentError
from tests.cards.test_pins import HO_KEY, PEPPER, T0, Clock, bundle  # noqa: F401 (fixtures below)
from tests.cards.test_pins import db  # noqa: F401  (pytest fixture)
from tests.device_extras import needs
from tests.fakes.vpcd_card import VirtualPicc


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(db, clock):  # noqa: F811
    pins = AttendantPins(db, station_id="st-1", settings=PinSettings(), pepper=PEPPER,
                         public_key=HO_KEY.public_key(), now=clock)
    pins.import_bundle(bundle())
    return SwipeSessions(pins, EventHub(), session_ttl_s=60, authorized_ttl_s=120, now=clock)


def code_of(fn, *args) -> str:
    with pytest.raises(AgentError) as info:
        fn(*args)
    return info.value.code


def test_swipe_pin_authorize_and_require(sessions, clock) -> None:
    session = sessions.on_stripe(";6012345678901234=2512101?")
    events, gap = sessions.hub.since(0)
    assert [e.type for e in events] == ["swipe.created"] and not gap
    assert events[0].data["card_id"] == "6012345678901234"
    assert code_of(sessions.require_authorized_session, session.id) == "swipe_session_not_authorized"
    assert code_of(sessions.authorize, session.id, "P-01", "9999") == "attendant_pin_invalid"
    authorized = sessions.authorize(session.id, "P-01", "1234")
    assert authorized.state == "authorized"
    assert sessions.require_authorized_session(session.id).attendant_id == "P-01"
    assert code_of(sessions.authorize, session.id, "P-01", "1234") == "swipe_already_authorized"
    types = [e.type for e in sessions.hub.since(0)[0]]
    assert types == ["swipe.created", "swipe.pin_rejected", "swipe.authorized"]
    # (the card number happens to contain "1234", so check the wrong PIN and the keys)
    assert all("9999" not in str(e.data) and "pin" not in e.data for e in sessions.hub.since(0)[0])
    clock.t += 121
    with pytest.raises(AgentError) as info:
        sessions.require_authorized_session(session.id)
    assert info.value.status == 403 and info.value.code == "swipe_session_not_authorized"


def test_pending_swipe_expires(sessions, clock) -> None:
    session = sessions.on_stripe(";6012345678=?")
    clock.t += 61
    assert code_of(sessions.authorize, session.id, "P-01", "1234") == "swipe_session_not_found"


def test_missing_session_and_bad_stripe(sessions) -> None:
    assert code_of(sessions.require_authorized_session, None) == "swipe_session_required"
    assert sessions.on_stripe("%E?;E?") is None
    assert sessions.hub.since(0)[0][-1].type == "swipe.failed"


def test_long_poll_wakes_on_publish() -> None:
    hub = EventHub(capacity=3)
    threading.Timer(0.05, hub.publish, args=("x", {})).start()
    events, _ = hub.wait(0, timeout=5)
    assert [e.seq for e in events] == [1]
    assert hub.wait(1, timeout=0.05) == ([], False)
    for _ in range(5):
        hub.publish("y", {})
    events, gap = hub.since(1)
    assert gap and [e.seq for e in events] == [4, 5, 6]


@needs("smartcard.scard", "pcsc")
def test_tap_on_real_reader_opens_a_session(sessions, make_card) -> None:
    from agent.drivers.pcsc_reader import PcscCardReader, PcscReaderConfig

    reader = PcscCardReader(sessions.on_card_read, PcscReaderConfig(reader_pattern="00 00$"),
                            on_error=sessions.on_card_error)
    reader.start()
    try:
        make_card(VirtualPicc.classic_1k(bytes.fromhex("04A1B2C3"))).insert()
        events, _ = sessions.hub.wait(0, timeout=5)
        assert events[0].type == "swipe.created" and events[0].data["card_id"] == "04A1B2C3"
        sessions.authorize(events[0].data["session_id"], "P-02", "908172")
    finally:
        reader.stop()
