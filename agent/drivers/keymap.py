"""Keyboard-wedge decoding: Linux key codes -> characters -> records (pure, no evdev import).

Wedge devices type their text as key presses for a keyboard layout: magstripe readers as US
(the default), ID scanners often as ``es`` or ``latam`` so that names keep their ``Ñ`` and
accents (layouts: :mod:`agent.drivers.keyboard_layouts`). We read scancodes, so the console's own
layout does not matter, only the one the device was set up for. Only key-down events produce
characters; auto-repeat is ignored; Shift and AltGr are tracked from their own down/up events;
a dead key (``´``) waits for the next key. Characters outside the layout arrive as Alt +
keypad digits (held Alt, decimal code, Alt released: with a leading 0 a Windows-1252 code, else
code page 437, as scanners emulate Windows). A record ends on Enter; a pause longer than
``inter_key_timeout_s`` between keys means a swipe was cut short (or a person typed on the
device), so the partial record is dropped.

>>> d = WedgeDecoder()
>>> events = keystrokes(";6012=?\\n", start=10.0)
>>> [r for r in (d.feed(c, v, t) for c, v, t in events) if r]
[';6012=?']
>>> d = WedgeDecoder(layout="es")
>>> [r for r in (d.feed(c, v, t) for c, v, t in keystrokes("PEÑA@JOSÉ\\n", layout="es")) if r]
['PEÑA@JOSÉ']
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from agent.drivers.keyboard_layouts import LAYOUTS, compose, is_dead, typing_table

# Linux input-event-codes.h (stable kernel ABI).
KEY_LEFTSHIFT, KEY_RIGHTSHIFT = 42, 54
KEY_LEFTALT, KEY_RIGHTALT = 56, 100  # right Alt is AltGr on es/latam
KEY_ENTER, KEY_KPENTER = 28, 96
KEY_DOWN, KEY_UP, KEY_REPEAT = 1, 0, 2
_KEYPAD_DIGITS = {82: "0", 79: "1", 80: "2", 81: "3", 75: "4", 76: "5", 77: "6", 71: "7", 72: "8", 73: "9"}
_DIGIT_TO_KEYPAD = {digit: code for code, digit in _KEYPAD_DIGITS.items()}


@dataclass
class WedgeDecoder:
    inter_key_timeout_s: float = 0.15
    max_record_chars: int = 512  # tracks 1+2 are < 200 chars; beyond this it is not a card
    _buffer: list[str] = field(default_factory=list)
    layout: str = "us"  # the layout the device types for (agent.drivers.keyboard_layouts.LAYOUTS)
    _shift_down: set[int] = field(default_factory=set)  # Shift and AltGr keys held
    _dead: str | None = None  # a dead key waiting for its letter
    _alt_digits: str | None = None  # keypad digits typed while left Alt is held
    _last_key_at: float | None = None
    dropped_partial: int = 0

    def feed(self, code: int, value: int, timestamp: float) -> str | None:
        """Feed one EV_KEY event; returns a complete record when Enter ends one."""
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT, KEY_RIGHTALT):
            if value == KEY_DOWN:
                self._shift_down.add(code)
            elif value == KEY_UP:
                self._shift_down.discard(code)
            return None
        if code == KEY_LEFTALT:
            return self._alt(value)
        if value != KEY_DOWN:
            return None
        if (self._buffer and self._last_key_at is not None
                and timestamp - self._last_key_at > self.inter_key_timeout_s):
            self._drop()
        self._last_key_at = timestamp
        if self._alt_digits is not None:
            if code in _KEYPAD_DIGITS:
                self._alt_digits += _KEYPAD_DIGITS[code]
            return None
        if code in (KEY_ENTER, KEY_KPENTER):
            record = "".join(self._buffer)
            self._buffer.clear()
            self._dead = None
            return record or None
        symbols = LAYOUTS[self.layout].get(code)
        if symbols is None:
            return None  # a key no reader sends (F-keys, arrows): ignore, keep the record
        level = 2 if KEY_RIGHTALT in self._shift_down else 1 if self._shift_down else 0
        symbol = symbols[level]
        if not symbol:
            return None
        if is_dead(symbol) and self._dead is None:
            self._dead = symbol
            return None
        if self._dead is not None:
            symbol, self._dead = compose(self._dead, symbol), None
        self._append(symbol)
        return None

    def _alt(self, value: int) -> None:
        """Left Alt down starts an Alt + keypad code, its release types the character."""
        if value == KEY_DOWN:
            self._alt_digits = ""
        elif value == KEY_UP and self._alt_digits is not None:
            digits, self._alt_digits = self._alt_digits, None
            if digits:
                codec = "cp1252" if digits.startswith("0") else "cp437"
                self._append(bytes([int(digits) % 256]).decode(codec, "replace"))
        return None

    def _append(self, text: str) -> None:
        self._buffer.extend(text)
        if len(self._buffer) > self.max_record_chars:
            self._drop()

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
        self._dead = self._alt_digits = None

    def _drop(self) -> None:
        self._buffer.clear()
        self._dead = None
        self.dropped_partial += 1


def keystrokes(text: str, start: float = 0.0, gap: float = 0.002, layout: str = "us"
               ) -> Iterator[tuple[int, int, float]]:
    """Scripted (code, value, timestamp) events that type ``text`` like a wedge device (tests).

    ``\\n`` is Enter. Shift or AltGr is pressed around each character that needs it, as readers
    do; a character the layout cannot type goes as Alt + keypad ``0`` + its Windows-1252 code.
    """
    table = typing_table(layout)
    t = start
    for ch in text:
        presses = [(KEY_ENTER, 0)] if ch == "\n" else table.get(ch)
        if presses is None:
            yield KEY_LEFTALT, KEY_DOWN, t
            for digit in "0" + str(ch.encode("cp1252")[0]):
                yield _DIGIT_TO_KEYPAD[digit], KEY_DOWN, t
                yield _DIGIT_TO_KEYPAD[digit], KEY_UP, t
            yield KEY_LEFTALT, KEY_UP, t + gap / 2
            t += gap
            continue
        for code, level in presses:
            modifier = {1: KEY_LEFTSHIFT, 2: KEY_RIGHTALT}.get(level)
            if modifier:
                yield modifier, KEY_DOWN, t
            yield code, KEY_DOWN, t
            yield code, KEY_UP, t + gap / 2
            if modifier:
                yield modifier, KEY_UP, t + gap / 2
            t += gap
