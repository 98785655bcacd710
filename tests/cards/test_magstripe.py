"""Magstripe: ISO 7813 parsing, the wedge decoder, the evdev pump, the serial line reader.

No uinput in CI, so no real input device can be created: the evdev tests drive ``pump`` with real
``evdev.InputEvent`` objects built in memory, and the reader's unplug/replug loop with a stand-in
device (a real pipe for ``select``, a queue of real ``InputEvent``s, ENODEV on unplug, as the
kernel does). Grabbing a real device is not exercised here.
"""
from __future__ import annotations

import errno
import os
import queue
import threading
import time
import tty
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from agent.cards.track import TrackError, parse_swipe, parse_track
from agent.drivers.keymap import KEY_DOWN, KEY_LEFTSHIFT, WedgeDecoder, keystrokes
from agent.drivers.magstripe_evdev import EV_KEY, EvdevMagstripeReader, pump
from agent.drivers.serial_card_reader import SerialCardReader
from tests.device_extras import needs, optional

evdev = optional("evdev", "evdev")
needs_evdev = needs("evdev", "evdev")

SWIPE = "%B6012345678901234^PEREZ/JUAN^2512101000?;6012345678901234=2512101000?"


def test_track1_fields_and_name_hidden_from_repr() -> None:
    t = parse_track("%B6012345678901234^PEREZ/JUAN^2512101000?")
    assert (t.pan, t.expiry, t.service_code, t.discretionary) == ("6012345678901234", "2512", "101", "000")
    assert t.name == "PEREZ/JUAN" and "PEREZ" not in repr(t)


def test_track2_without_expiry() -> None:
    t = parse_track(";6012345678=?")
    assert (t.pan, t.expiry, t.service_code) == ("6012345678", None, None)


@pytest.mark.parametrize("raw, code", [
    ("%E?", "track_bad_read"), (";E?", "track_bad_read"), (";12345", "track_malformed"),
    (";12a45=?", "track_malformed"), ("%B^NAME^?", "track_malformed"), ("", "track_malformed"),
    (";12345678901234567890=?", "track_malformed"),  # PAN longer than 19 digits
])
def test_bad_tracks(raw: str, code: str) -> None:
    with pytest.raises(TrackError) as info:
        parse_track(raw)
    assert info.value.code == code and info.value.es


def test_swipe_with_both_tracks_bad() -> None:
    with pytest.raises(TrackError) as info:
        parse_swipe("%E?;E?")
    assert info.value.code == "track_bad_read"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_parser_never_crashes_on_garbage(raw: str) -> None:
    try:
        parse_swipe(raw)
    except TrackError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.from_regex(r"\d{1,19}", fullmatch=True), st.from_regex(r"\d{0,20}", fullmatch=True))
def test_track2_roundtrip(pan: str, rest: str) -> None:
    assert parse_track(f";{pan}={rest}?").pan == pan


def feed_all(decoder: WedgeDecoder, events) -> list[str]:
    return [r for r in (decoder.feed(c, v, t) for c, v, t in events) if r is not None]


def test_decoder_tracks_shift_and_ends_on_enter() -> None:
    assert feed_all(WedgeDecoder(), keystrokes(SWIPE + "\n")) == [SWIPE]


def test_decoder_drops_partial_record_after_pause() -> None:
    decoder = WedgeDecoder(inter_key_timeout_s=0.1)
    events = list(keystrokes(";601234", start=0.0)) + list(keystrokes(";6012345678=?\n", start=5.0))
    assert feed_all(decoder, events) == [";6012345678=?"]
    assert decoder.dropped_partial == 1


def test_decoder_expire_drops_when_reader_goes_quiet() -> None:
    decoder = WedgeDecoder(inter_key_timeout_s=0.1)
    feed_all(decoder, keystrokes(";6012", start=1.0))
    assert decoder.expire(1.05) is False
    assert decoder.expire(2.0) is True
    assert feed_all(decoder, keystrokes("\n", start=2.1)) == []


def test_decoder_ignores_repeats_and_shift_stays_until_released() -> None:
    decoder = WedgeDecoder()
    events = [(KEY_LEFTSHIFT, KEY_DOWN, 0.0), (6, 1, 0.001), (6, 2, 0.002), (6, 0, 0.003),
              (KEY_LEFTSHIFT, 0, 0.004), (6, 1, 0.005), (28, 1, 0.006)]
    assert feed_all(decoder, events) == ["%5"]


@needs_evdev
def test_evdev_pump_with_real_input_events() -> None:
    events = [evdev.InputEvent(int(t), int((t % 1) * 1e6), EV_KEY, c, v)
              for c, v, t in keystrokes(";6012345678=?\n", start=100.0)]
    events.insert(3, evdev.InputEvent(100, 0, 4, 4, 458792))  # EV_MSC scan code: ignored
    got: list[str] = []
    assert pump(events, WedgeDecoder(), got.append) == 1
    assert got == [";6012345678=?"]


class StandInInputDevice:
    """What evdev.InputDevice offers the reader: ``fd`` for select, ``read()``, ``ungrab``, ``close``."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()
        self.fd = self._r
        self.pending: list[Any] = []
        self.unplugged = False
        self.lock = threading.Lock()

    def type(self, text: str, start: float) -> None:
        with self.lock:
            self.pending += [evdev.InputEvent(int(t), int((t % 1) * 1e6), EV_KEY, c, v)
                             for c, v, t in keystrokes(text, start=start)]
        os.write(self._w, b"x")

    def unplug(self) -> None:
        self.unplugged = True
        os.write(self._w, b"x")

    def read(self) -> list[Any]:
        os.read(self._r, 4096)
        if self.unplugged:
            raise OSError(errno.ENODEV, "No such device")
        with self.lock:
            events, self.pending = self.pending, []
        return events

    def ungrab(self) -> None:
        if self.unplugged:
            raise OSError(errno.ENODEV, "No such device")

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)


@needs_evdev
def test_evdev_reader_waits_for_the_device_and_reopens_it_after_an_unplug() -> None:
    plugged: list[StandInInputDevice] = []
    opened: list[StandInInputDevice] = []

    def opener(path: str) -> StandInInputDevice:
        if not plugged:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        opened.append(plugged.pop())
        return opened[-1]

    records: queue.Queue[str] = queue.Queue()
    # A long inter-key timeout, so that only the reset on unplug can keep a half swipe out.
    reader = EvdevMagstripeReader("/dev/input/by-id/usb-MagTek-event-kbd", records.put, reopen_every_s=0.05,
                                  inter_key_timeout_s=5.0, opener=opener)
    reader.start()
    try:
        assert not reader.connected.wait(0.3)  # missing at start: waiting, not crashed
        plugged.append(StandInInputDevice())
        assert reader.connected.wait(5)
        opened[0].type(";6012345678=?\n", start=time.time())
        assert records.get(timeout=3) == ";6012345678=?"

        opened[0].type(";60123", start=time.time())  # half a swipe, then the cable is pulled
        assert wait_for(lambda: not opened[0].pending)  # the reader has the half
        opened[0].unplug()
        assert wait_for(lambda: not reader.connected.is_set())
        plugged.append(StandInInputDevice())
        assert reader.connected.wait(5)
        opened[1].type(";6099999999=?\n", start=time.time())
        assert records.get(timeout=3) == ";6099999999=?"
        with pytest.raises(queue.Empty):
            records.get(timeout=0.3)
    finally:
        reader.stop()
    assert not reader.connected.is_set()


def wait_for(predicate, timeout: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_serial_reader_over_a_real_pty() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    lines: queue.Queue[str] = queue.Queue()
    reader = SerialCardReader(os.ttyname(slave), lines.put, max_line=64)
    reader.start()
    try:
        assert reader.connected.wait(5)
        os.write(master, b";6012345678=2512?\r\n\r\n" + b"\xff\xfe garbage\r\n" + b"X" * 100 + b"\n04A1B2C3\r\n")
        assert lines.get(timeout=3) == ";6012345678=2512?"
        assert lines.get(timeout=3) == "04A1B2C3"
        with pytest.raises(queue.Empty):
            lines.get(timeout=0.3)
        assert reader.dropped_lines == 2
    finally:
        reader.stop()
        os.close(master)
        os.close(slave)


def test_serial_reader_waits_for_a_missing_port_and_opens_it_when_plugged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import agent.drivers.serial_card_reader as module

    link = tmp_path / "ttyCARD"  # a stable by-id style name that does not exist yet
    lines: queue.Queue[str] = queue.Queue()
    reader = SerialCardReader(str(link), lines.put)
    saved, module._REOPEN_EVERY_S = module._REOPEN_EVERY_S, 0.1
    reader.start()  # must not raise: a missing reader never stops the agent
    master, slave = os.openpty()
    try:
        tty.setraw(slave)
        link.symlink_to(os.ttyname(slave))  # plugged in
        assert reader.connected.wait(5)
        os.write(master, b";6012345678=2512?\r\n")
        assert lines.get(timeout=3) == ";6012345678=2512?"
    finally:
        reader.stop()
        module._REOPEN_EVERY_S = saved
        os.close(master)
        os.close(slave)
