"""Keyboard-wedge decoding: Linux key codes -> characters -> records (pure, no evdev import).

Wedge readers type the track as US-layout key presses; we read scancodes, so the console's own
layout (often Spanish/LatAm at stations) does not matter. Only key-down events produce
characters; auto-repeat is ignored; Shift is tracked from its own down/up events. A record ends
on Enter; a pause longer than ``inter_key_timeout_s`` between keys means a swipe was cut short
(or a person typed on the device), so the partial record is dropped.

>>> d = WedgeDecoder()
>>> events = keystrokes(";6012=?\\n", start=10.0)
>>> [r for r in (d.feed(c, v, t) for c, v, t in events) if r]
[';6012=?']
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

# Linux input-event-codes.h (stable kernel ABI).
KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 42, 54
KEY_ENTER, KEY_KPENTER = 28, 96
KEY_DOWN, KEY_UP, KEY_REPEAT = 1, 0, 2

# code -> (unshifted, shifted), US layout.
_US: dict[int, tuple[str, str]] = {
    2: ("1", "!"), 3: ("2", "@"), 4: ("3", "#"), 5: ("4", "$"), 6: ("5", "%"), 7: ("6", "^"),
    8: ("7", "&"), 9: ("8", "*"), 10: ("9", "("), 11: ("0", ")"), 12: ("-", "_"), 13: ("=", "+"),
    16: ("q", "Q"), 17: ("w", "W"), 18: ("e", "E"), 19: ("r", "R"), 20: ("t", "T"), 21: ("y", "Y"),
    22: ("u", "U"), 23: ("i", "I"), 24: ("o", "O"), 25: ("p", "P"), 26: ("[", "{"), 27: ("]", "}"),
    30: ("a", "A"), 31: ("s", "S"), 32: ("d", "D"), 33: ("f", "F"), 34: ("g", "G"), 35: ("h", "H"),
    36: ("j", "J"), 37: ("k", "K"), 38: ("l", "L"), 39: (";", ":"), 40: ("'", '"'), 41: ("`", "~"),
    43: ("\\", "|"), 44: ("z", "Z"), 45: ("x", "X"), 46: ("c", "C"), 47: ("v", "V"), 48: ("b", "B"),
    49: ("n", "N"), 50: ("m", "M"), 51: (",", "<"), 52: (".", ">"), 53: ("/", "?"), 57: (" ", " "),
}
_CHAR_TO_KEY: dict[str, tuple[int, bool]] = {}
for _code, (_plain, _shifted) in _US.items():
    _CHAR_TO_KEY.setdefault(_plain, (_code, False))
    _CHAR_TO_KEY.setdefault(_shifted, (_code, True))


@dataclass
class WedgeDecoder:
    inter_key_timeout_s: float = 0.15
    max_record_chars: int = 512  # tracks 1+2 are < 200 chars; beyond this it is not a card
    _buffer: list[str] = field(default_factory=list)
    _shift_down: set[int] = field(default_factory=set)
    _last_key_at: float | None = None
    dropped_partial: int = 0

    def feed(self, code: int, value: int, timestamp: float) -> str | None:
        """Feed one EV_KEY event; returns a complete record when Enter ends one."""
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            if value == KEY_DOWN:
                self._shift_down.add(code)
            elif value == KEY_UP:
                self._shift_down.discard(code)
            return None
        if value != KEY_DOWN:
            return None
        if (self._buffer and self._last_key_at is not None
                and timestamp - self._last_key_at > self.inter_key_timeout_s):
            self._drop()
        self._last_key_at = timestamp
        if code in (KEY_ENTER, KEY_KPENTER):
            record = "".join(self._buffer)
            self._buffer.clear()
            return record or None
        chars = _US.get(code)
        if chars is None:
            return None  # a key no reader sends (F-keys, arrows): ignore, keep the record
        self._buffer.append(chars[1] if self._shift_down else chars[0])
        if len(self._buffer) > self.max_record_chars:
            self._drop()
        return None

    def expire(self, now: float) -> bool:
        """Drop a partial record if the reader went quiet; True if one was dropped."""
        if self._buffer and self._last_key_at is not None and now - self._last_key_at > self.inter_key_timeout_s:
            self._drop()
            return True
        return False

    def reset(self) -> None:
        """Forget a partial record and held modifiers (the reader was unplugged mid-swipe)."""
        if self._buffer:
            self._drop()
        self._shift_down.clear()
        self._last_key_at = None

    def _drop(self) -> None:
        self._buffer.clear()
        self.dropped_partial += 1


def keystrokes(text: str, start: float = 0.0, gap: float = 0.002) -> Iterator[tuple[int, int, float]]:
    """Scripted (code, value, timestamp) events that type ``text`` like a wedge reader (tests).

    ``\\n`` is Enter. Shift is pressed around each shifted character, as readers do.
    """
    t = start
    for ch in text:
        if ch == "\n":
            code, shifted = KEY_ENTER, False
        else:
            code, shifted = _CHAR_TO_KEY[ch]
        if shifted:
            yield KEY_LEFTSHIFT, KEY_DOWN, t
        yield code, KEY_DOWN, t
        yield code, KEY_UP, t + gap / 2
        if shifted:
            yield KEY_LEFTSHIFT, KEY_UP, t + gap / 2
        t += gap
