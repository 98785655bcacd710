"""Plain card-number lines, hex UIDs and ISO tracks from line readers; swipes name reader and POS.

The serial reader runs over a real pty (the kernel's serial line discipline); the card station
is the real one, with its event hub, as the agent builds it.
"""
from __future__ import annotations

import os
import tty
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from agent.cards.config import CardsSettings
from agent.cards.lines import CardLineSettings, luhn_ok, parse_reader_line
from agent.cards.track import TrackError
from agent.cards.wiring import CardStation
from agent.store.db import Database
from agent.station import MIGRATIONS
from tests.conftest import wait_until


@pytest.mark.parametrize(("line", "card_id", "card_type"), [
    ("6012345678901234", "6012345678901234", "number"),
    ("  6012345678901234 ", "6012345678901234", "number"),
    ("04A1B2C3", "04A1B2C3", "uid"),  # 8 characters with letters: a 4-byte UID, not a number
    ("12345678", "12345678", "number"),  # all digits: a card number (numbers are tried first)
    ("04a1b2c3d4e5f6", "04A1B2C3D4E5F6", "uid"),
    ("04:A1:B2:C3", "04A1B2C3", "uid"),
    ("04-a1-b2-c3-d4-e5-f6", "04A1B2C3D4E5F6", "uid"),
    (";6012345678901234=2512101?", "6012345678901234", "track2"),
    ("%B6012345678901234^PEREZ/JUAN^2512101?", "6012345678901234", "track1"),
])
def test_line_kinds(line: str, card_id: str, card_type: str) -> None:
    card = parse_reader_line(line, CardLineSettings())
    assert (card.card_id, card.card_type) == (card_id, card_type)


@pytest.mark.parametrize(("line", "code"), [
    ("hello", "card_line_malformed"),
    ("1234", "card_line_malformed"),  # too short for a number, not a 4/7/10-byte UID
    ("04A1B2C", "card_line_malformed"),  # odd hex
    (";E?", "track_bad_read"),
])
def test_bad_lines_name_the_cause(line: str, code: str) -> None:
    with pytest.raises(TrackError) as err:
        parse_reader_line(line, CardLineSettings())
    assert err.value.code == code


def test_luhn_when_the_program_uses_it_and_a_custom_pattern() -> None:
    strict = CardLineSettings(luhn=True)
    assert parse_reader_line("79927398713", strict).card_type == "number"
    with pytest.raises(TrackError) as err:
        parse_reader_line("79927398710", strict)
    assert err.value.code == "card_number_check_digit"
    assert parse_reader_line("79927398710", CardLineSettings()).card_id == "79927398710"  # no Luhn by default
    prefixed = CardLineSettings(number_pattern=r"6037\d{12}")
    assert parse_reader_line("6037990012345678", prefixed).card_type == "number"
    with pytest.raises(TrackError):
        parse_reader_line("5037990012345678", prefixed)


def test_a_bad_pattern_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="regular expression"):
        CardLineSettings(number_pattern="(")


@given(st.text(max_size=80))
def test_any_line_is_a_card_or_a_named_error(line: str) -> None:
    try:
        card = parse_reader_line(line, CardLineSettings(luhn=True))
    except TrackError as exc:
        assert exc.code in {"card_line_malformed", "card_number_check_digit", "track_bad_read", "track_malformed"}
    else:
        assert card.card_id and card.card_type in {"number", "uid", "track1", "track2"}
        if card.card_type == "number":
            assert luhn_ok(card.card_id)


def test_serial_reader_lines_open_swipes_naming_reader_and_pos(tmp_path: Path) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    db = Database(tmp_path / "agent.db", list(MIGRATIONS))
    settings = CardsSettings.model_validate({
        "magstripe": {"serial_port": os.ttyname(slave), "serial_name": "isla-2"},
        "lines": {"luhn": True}, "pos_for_reader": {"isla-2": "pos-2"}})
    station = CardStation(settings, db, station_id="st-1", key_dir=tmp_path / "keys")
    station.start()
    try:
        assert wait_until(lambda: station.started[0].connected.is_set(), 10)
        for line in (b"79927398713\r\n", b"04:A1:B2:C3:D4:E5:F6\r\n", b"79927398710\r\n",
                     b";6012345678901234=2512101?\r\n"):
            os.write(master, line)
        assert wait_until(lambda: len(station.hub.since(0)[0]) >= 4, 10)
        events = [(e.type, e.data) for e in station.hub.since(0)[0]]
    finally:
        station.stop()
        db.close()
        os.close(master)
        os.close(slave)
    created = [d for t, d in events if t == "swipe.created"]
    assert [(d["card_id"], d["card_type"]) for d in created] == [
        ("79927398713", "number"), ("04A1B2C3D4E5F6", "uid"), ("6012345678901234", "track2")]
    assert all(d["reader"] == "isla-2" and d["reader_pos"] == "pos-2" and d["source"] == "serial" for d in created)
    failed = [d for t, d in events if t == "swipe.failed"]
    assert failed == [{"reader": "isla-2", "reader_pos": "pos-2", "code": "card_number_check_digit",
                       "message_es": "El número de tarjeta leído no es válido. Léala de nuevo.",
                       "message_en": "the card number read has a wrong check digit"}]
