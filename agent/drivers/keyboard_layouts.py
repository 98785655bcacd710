"""Keyboard layouts for wedge devices: Linux key code -> what the key types (pure data).

A wedge scanner types its text as key presses for the layout it was set up for; at Spanish-
speaking stations that is often ``es`` (Spain) or ``latam``, where the names' ``Ñ`` has its own
key and accented vowels come from a dead key (``´`` then the vowel). Each layout maps a key code
to its (plain, Shift, AltGr) symbols, transcribed from xkb-data's ``symbols/us``,
``symbols/es`` and ``symbols/latam`` (which include ``latin`` and ``latin(type4)``); only the
symbols a scanner may type are kept. Dead keys are named ``dead_<accent>``.
"""
from __future__ import annotations

import unicodedata

Keys = dict[int, tuple[str, str, str]]

# xkb key names -> Linux key codes (input-event-codes.h).
_ROWS = {"AE": range(2, 14), "AD": range(16, 28), "AC": range(30, 41), "AB": range(44, 54)}
TLDE, BKSL, LSGT, SPCE = 41, 43, 86, 57

_US: Keys = {
    2: ("1", "!", ""), 3: ("2", "@", ""), 4: ("3", "#", ""), 5: ("4", "$", ""), 6: ("5", "%", ""),
    7: ("6", "^", ""), 8: ("7", "&", ""), 9: ("8", "*", ""), 10: ("9", "(", ""), 11: ("0", ")", ""),
    12: ("-", "_", ""), 13: ("=", "+", ""), 26: ("[", "{", ""), 27: ("]", "}", ""), 39: (";", ":", ""),
    40: ("'", '"', ""), TLDE: ("`", "~", ""), BKSL: ("\\", "|", ""), 51: (",", "<", ""), 52: (".", ">", ""),
    53: ("/", "?", ""), SPCE: (" ", " ", ""),
}
for _code, _letter in zip([*range(16, 26), *range(30, 39), *range(44, 51)], "qwertyuiopasdfghjklzxcvbnm"):
    _US[_code] = (_letter, _letter.upper(), "")

# latin(type4): the digit row and punctuation shared by es and latam; AltGr+Q is @ in latin.
_TYPE4: Keys = {**_US,
                2: ("1", "!", "|"), 3: ("2", '"', "@"), 4: ("3", "#", ""), 5: ("4", "$", "~"), 6: ("5", "%", ""),
                7: ("6", "&", ""), 8: ("7", "/", "{"), 9: ("8", "(", "["), 10: ("9", ")", "]"),
                11: ("0", "=", "}"), 16: ("q", "Q", "@"), 51: (",", ";", ""), 52: (".", ":", ""),
                53: ("-", "_", ""), LSGT: ("<", ">", "")}

_ES: Keys = {**_TYPE4,
             4: ("3", "·", "#"), 12: ("'", "?", "\\"), 13: ("¡", "¿", ""),
             26: ("dead_grave", "dead_circumflex", "["), 27: ("+", "*", "]"),
             39: ("ñ", "Ñ", "dead_tilde"), 40: ("dead_acute", "dead_diaeresis", "{"),
             TLDE: ("º", "ª", "\\"), BKSL: ("ç", "Ç", "}")}

_LATAM: Keys = {**_TYPE4,
                12: ("'", "?", "\\"), 13: ("¿", "¡", ""),
                26: ("dead_acute", "dead_diaeresis", "dead_diaeresis"), 27: ("+", "*", "~"),
                39: ("ñ", "Ñ", "~"), 40: ("{", "[", "dead_circumflex"), TLDE: ("|", "°", ""),
                BKSL: ("}", "]", "dead_grave"), LSGT: ("<", ">", "\\")}

LAYOUTS: dict[str, Keys] = {"us": _US, "es": _ES, "latam": _LATAM}

_COMBINING = {"dead_acute": "\u0301", "dead_grave": "\u0300", "dead_circumflex": "\u0302",
              "dead_diaeresis": "\u0308", "dead_tilde": "\u0303"}
_SPACING = {"dead_acute": "´", "dead_grave": "`", "dead_circumflex": "^", "dead_diaeresis": "¨", "dead_tilde": "~"}


def is_dead(symbol: str) -> bool:
    return symbol.startswith("dead_")


def compose(dead: str, symbol: str) -> str:
    """A dead key then a symbol: the accented letter when there is one (``´`` + ``a`` = ``á``),
    the accent itself before a space, else both (what xkb types for an undefined pair)."""
    if symbol == " ":
        return _SPACING[dead]
    if is_dead(symbol):
        return _SPACING[dead] + _SPACING[symbol]
    composed = unicodedata.normalize("NFC", symbol + _COMBINING[dead])
    return composed if len(composed) == 1 else _SPACING[dead] + symbol


def typing_table(layout: str) -> dict[str, list[tuple[int, int]]]:
    """Character -> the key presses that type it on ``layout``, as (code, level) with level 0
    plain, 1 Shift, 2 AltGr: one press, or a dead key and a letter. For test scripts."""
    keys = LAYOUTS[layout]
    table: dict[str, list[tuple[int, int]]] = {}
    for code, symbols in keys.items():
        for level, symbol in enumerate(symbols):
            if symbol and not is_dead(symbol):
                table.setdefault(symbol, [(code, level)])
    for code, symbols in keys.items():
        for level, dead in enumerate(symbols):
            if not is_dead(dead):
                continue
            for letter, presses in list(table.items()):
                if len(presses) == 1 and letter.isalpha() and letter.isascii():
                    composed = compose(dead, letter)
                    if len(composed) == 1:
                        table.setdefault(composed, [(code, level), presses[0]])
    return table
