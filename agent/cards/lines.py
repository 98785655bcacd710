"""What a serial or keyboard-wedge card reader sends, one line per card (pure).

Three kinds of line reach the agent:

- ISO 7813 magnetic stripe tracks (``%B...^...^...?`` / ``;PAN=...?``): ``agent.cards.track``;
- a plain card number, as optical / barcode readers and many RFID modules in "ASCII output"
  mode send it (seed 002's "unidad óptica lectora"): digits matching ``number_pattern``, with
  the Luhn check digit verified when the program's cards carry one (``luhn = true``);
- a hex UID of a contactless card (4, 7 or 10 bytes; ``04A1B2C3``, ``04:A1:B2:C3``), upper-cased
  without separators, the same spelling the PC/SC reader reports.

>>> settings = CardLineSettings()
>>> parse_reader_line("6012345678901234", settings)
CardLine(card_id='6012345678901234', card_type='number')
>>> parse_reader_line("04:a1:b2:c3", settings)
CardLine(card_id='04A1B2C3', card_type='uid')
>>> parse_reader_line(";6012345678901234=2512101?", settings)
CardLine(card_id='6012345678901234', card_type='track2')
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.cards.track import TrackError, parse_swipe

_SEPARATORS = re.compile(r"[:\- ]")


class CardLineSettings(BaseModel):
    """``[cards.lines]``: which plain lines are card numbers or UIDs (tracks are always accepted)."""

    model_config = ConfigDict(extra="forbid")

    number_pattern: str = Field(r"\d{8,19}", description="Regex (whole line) of a plain card number.")
    luhn: bool = Field(False, description="Plain card numbers end in a Luhn check digit (refuse typos/misreads).")
    uid_pattern: str = Field(r"[0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20}",
                             description="Regex (whole line, upper-cased, without ':', '-' or spaces) of a hex UID.")

    @field_validator("number_pattern", "uid_pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return pattern


@dataclass(frozen=True)
class CardLine:
    card_id: str
    card_type: str  # "track1" | "track2" | "number" | "uid"


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment and many loyalty card numbers.

    >>> luhn_ok("79927398713"), luhn_ok("79927398710")
    (True, False)
    """
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _error(code: str, es: str, en: str) -> TrackError:
    return TrackError(code, es, en)


def parse_reader_line(line: str, settings: CardLineSettings) -> CardLine:
    """One line from a reader (CR/LF already stripped), or a ``TrackError`` the POS can show."""
    text = line.strip()
    if text[:1] in ("%", ";"):
        track = parse_swipe(text)
        return CardLine(track.pan, f"track{track.track}")
    if re.fullmatch(settings.number_pattern, text):
        if settings.luhn and not (text.isdigit() and luhn_ok(text)):
            raise _error("card_number_check_digit", "El número de tarjeta leído no es válido. Léala de nuevo.",
                         "the card number read has a wrong check digit")
        return CardLine(text, "number")
    uid = _SEPARATORS.sub("", text).upper()
    if re.fullmatch(settings.uid_pattern, uid):
        return CardLine(uid, "uid")
    raise _error("card_line_malformed", "La lectura de la tarjeta no es válida. Pásela de nuevo.",
                 "not a card track, card number or card UID")
