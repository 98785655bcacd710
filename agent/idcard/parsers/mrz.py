"""ICAO 9303 machine readable zone basics shared by the TD1 (ID card) and TD3 (passport) parsers:
the 7-3-1 check digit, splitting text into lines, names and the issuing states we serve.

OCR output and some hand-held readers drop the trailing ``<`` filler of a line; a short line is
padded back to its width. That is safe because every field that matters is covered by a check
digit (a line that lost real characters fails its checks), and TD1's third line (names) has no
check digit and only ever ends in filler.

>>> split_lines(b"IDCHL1234567894<<<\\n9001015F3001015CHL12345678<54\\nDOE<<JOHN", 3, 30, 2)[2]
'DOE<<JOHN<<<<<<<<<<<<<<<<<<<<<'
"""
from __future__ import annotations

import re

from agent.idcard.errors import InvalidIdPayload, NotAnIdDocument
from agent.idcard.parsers._text import normalize_name

_WEIGHTS = (7, 3, 1)
_CHARS_RE = re.compile(r"^[A-Z0-9<]+$")
# ISO 3166 alpha-3 -> alpha-2 for the region we serve; other issuing states are refused.
COUNTRIES = {"COL": "CO", "ARG": "AR", "CHL": "CL", "PER": "PE", "ECU": "EC", "URY": "UY",
             "BOL": "BO", "PRY": "PY", "VEN": "VE", "BRA": "BR", "MEX": "MX"}


def check_digit(field: str) -> str:
    """ICAO 7-3-1 check digit: digits as is, A-Z = 10..35, '<' = 0, mod 10.

    >>> check_digit("L898902C3"), check_digit("740812"), check_digit("<<<")
    ('6', '2', '0')
    """
    total = 0
    for i, char in enumerate(field):
        if "0" <= char <= "9":
            value = ord(char) - 48
        elif "A" <= char <= "Z":
            value = ord(char) - 55
        elif char == "<":
            value = 0
        else:
            raise InvalidIdPayload("invalid MRZ character", "caracter invalido en la MRZ")
        total += value * _WEIGHTS[i % 3]
    return str(total % 10)


def text_lines(data: bytes) -> list[str]:
    """Non-empty lines, upper case, spaces removed; NotAnIdDocument when it is not ASCII text."""
    try:
        text = data.decode("ascii").strip().upper()
    except UnicodeDecodeError:
        raise NotAnIdDocument() from None
    return [ln.strip().replace(" ", "") for ln in text.splitlines() if ln.strip()]


def split_lines(data: bytes, count: int, width: int, names_line: int) -> list[str]:
    """``count`` lines of ``width`` characters (short ones padded with '<'), from newline-separated
    or run-together text; NotAnIdDocument when the text is not shaped like such an MRZ.

    The names line (no check digit) may be as short as a short name leaves it; a line with check
    digits shorter than half its width has lost more than filler: that is not this MRZ."""
    lines = text_lines(data)
    if len(lines) == 1 and len(lines[0]) == count * width:
        lines = [lines[0][i * width:(i + 1) * width] for i in range(count)]
    if len(lines) != count or any(
            not _CHARS_RE.match(ln) or len(ln) > width or (i != names_line and len(ln) < width // 2)
            for i, ln in enumerate(lines)):
        raise NotAnIdDocument()
    return [ln.ljust(width, "<") for ln in lines]


def require_check(value: str, digit: str, field: str) -> None:
    if check_digit(value) != digit:
        raise InvalidIdPayload(f"MRZ check digit mismatch ({field})", f"digito de control de la MRZ incorrecto ({field})",
                               field=field)


def names(zone: str) -> tuple[str | None, str | None]:
    """``SURNAMES<<GIVEN<NAMES`` -> (surnames, given names), each normalized or None."""
    surname_part, _, given_part = zone.partition("<<")
    surnames = normalize_name(surname_part.replace("<", " "), "surnames")
    given = normalize_name(given_part.replace("<", " "), "given_names")
    return surnames, given


def country_of(state_field: str) -> str:
    """Alpha-2 of an issuing state we serve. No check digit covers the issuing state: a misread
    there would invent a country, so only the states this agent serves are accepted."""
    state = state_field.replace("<", "")
    country = COUNTRIES.get(state)
    if country is None:
        raise InvalidIdPayload(f"MRZ issuing state {state!r} is not one this station serves",
                               f"el país emisor de la MRZ ({state}) no es uno de los atendidos por esta estación",
                               field="issuing_state")
    return country


def sex_of(char: str) -> str | None:
    return {"M": "M", "F": "F", "X": "X"}.get(char)
