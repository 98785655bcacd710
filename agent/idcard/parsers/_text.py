"""Shared text helpers for the document parsers: decoding, names, dates.

Kept free of any document knowledge; each parser decides what is an error and what a warning.
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata

from agent.idcard.errors import InvalidIdPayload

# Letters (any script's accented Latin), spaces, apostrophes, hyphens and dots: anything else in a
# name field means we are not looking at a name (binary junk, a misread), so we refuse it.
_NAME_RE = re.compile(r"^[^\W\d_]+(?:[ '\-.][^\W\d_]+)*\.?$")
# Particles that belong to the following word in Spanish compound surnames/names.
_PARTICLES = {"DE", "DEL", "LA", "LAS", "LOS", "Y", "SAN", "SANTA", "DA", "DI", "VAN", "VON"}


def decode_payload(data: bytes) -> str:
    """Decode barcode bytes: strict UTF-8 first (ASCII is UTF-8), then cp1252, then latin-1.

    The documents carry no ECI marker, so the encoding has to be guessed; strict UTF-8 almost
    never accepts latin-1 text with accents by accident.

    >>> decode_payload("PEÑA".encode("utf-8"))
    'PEÑA'
    >>> decode_payload("PEÑA".encode("latin-1"))
    'PEÑA'
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def fix_mojibake(text: str) -> str:
    """Undo one round of UTF-8-read-as-latin-1 (``PEÃ\\x91A`` -> ``PEÑA``) when that is what it is.

    >>> fix_mojibake("PE\\u00c3\\u0091A")
    'PEÑA'
    >>> fix_mojibake("MUÑOZ")
    'MUÑOZ'
    """
    if "Ã" not in text and "Â" not in text:
        return text
    for codec in ("latin-1", "cp1252"):
        try:
            return text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text


def normalize_name(raw: str, field: str) -> str | None:
    """NFC, upper case, single spaces; ``None`` when empty; error when it is not a name.

    >>> normalize_name("  josé   maría ", "given_names")
    'JOSÉ MARÍA'
    >>> normalize_name("mun\\u0303oz", "surnames")  # decomposed tilde -> composed Ñ
    'MUÑOZ'
    >>> normalize_name("", "surnames") is None
    True
    >>> normalize_name("AB\\x07CD", "surnames")
    Traceback (most recent call last):
    ...
    agent.idcard.errors.InvalidIdPayload: surnames is not a name
    """
    text = unicodedata.normalize("NFC", fix_mojibake(raw)).upper()
    text = " ".join(text.split())
    if not text:
        return None
    if not _NAME_RE.match(text) or len(text) > 80:
        raise InvalidIdPayload(f"{field} is not a name", f"el campo {field} no es un nombre valido", field=field)
    return text


def split_two(full: str | None) -> tuple[str | None, str | None]:
    """Split a full name string into (first, rest), keeping Spanish particles with their word.

    >>> split_two("DE LA TORRE GOMEZ")
    ('DE LA TORRE', 'GOMEZ')
    >>> split_two("JUAN CARLOS ALBERTO")
    ('JUAN', 'CARLOS ALBERTO')
    >>> split_two("ANA")
    ('ANA', None)
    >>> split_two(None)
    (None, None)
    """
    if not full:
        return None, None
    words = full.split(" ")
    first: list[str] = []
    while words:
        word = words.pop(0)
        first.append(word)
        if word not in _PARTICLES:
            break
    rest = " ".join(words)
    return " ".join(first), (rest or None)


def join_names(*parts: str | None) -> str | None:
    """Join present name parts with single spaces.

    >>> join_names("ANA", None, "MARIA")
    'ANA MARIA'
    >>> join_names(None, None) is None
    True
    """
    present = [p for p in parts if p]
    return " ".join(present) if present else None


def is_ascii_digits(text: str) -> bool:
    """``str.isdigit`` accepts '²' and Arabic-Indic digits; document numbers are ASCII only.

    >>> is_ascii_digits("0123"), is_ascii_digits("1²"), is_ascii_digits("")
    (True, False, False)
    """
    return bool(text) and all("0" <= c <= "9" for c in text)


def iso_date(year: int, month: int, day: int, field: str) -> str:
    """Validated ISO date or :class:`InvalidIdPayload`.

    >>> iso_date(1990, 8, 22, "birth_date")
    '1990-08-22'
    >>> iso_date(1990, 2, 30, "birth_date")
    Traceback (most recent call last):
    ...
    agent.idcard.errors.InvalidIdPayload: birth_date is not a valid date
    """
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        raise InvalidIdPayload(f"{field} is not a valid date", f"el campo {field} no es una fecha valida",
                               field=field) from None


def parse_yyyymmdd(text: str, field: str) -> str:
    """``19900822`` -> ``1990-08-22``.

    >>> parse_yyyymmdd("19900822", "birth_date")
    '1990-08-22'
    """
    if len(text) != 8 or not is_ascii_digits(text):
        raise InvalidIdPayload(f"{field} is not a date", f"el campo {field} no es una fecha", field=field)
    return iso_date(int(text[:4]), int(text[4:6]), int(text[6:]), field)


def parse_ddmmyyyy(text: str, field: str) -> str:
    """``22/08/1990`` -> ``1990-08-22``.

    >>> parse_ddmmyyyy("22/08/1990", "birth_date")
    '1990-08-22'
    """
    parts = text.strip().split("/")
    if len(parts) != 3 or not all(is_ascii_digits(p) for p in parts) or len(parts[2]) != 4:
        raise InvalidIdPayload(f"{field} is not a date", f"el campo {field} no es una fecha", field=field)
    return iso_date(int(parts[2]), int(parts[1]), int(parts[0]), field)


def parse_yymmdd(text: str, field: str, *, future: bool, today: dt.date | None = None) -> str:
    """Two-digit-year date. Birth dates (``future=False``) are never in the future; expiry dates
    (``future=True``) are taken within 50 years before to 50 after today.

    >>> parse_yymmdd("900822", "birth_date", future=False, today=dt.date(2025, 1, 1))
    '1990-08-22'
    >>> parse_yymmdd("300101", "expiry", future=True, today=dt.date(2025, 1, 1))
    '2030-01-01'
    """
    if len(text) != 6 or not is_ascii_digits(text):
        raise InvalidIdPayload(f"{field} is not a date", f"el campo {field} no es una fecha", field=field)
    today = today or dt.date.today()
    yy = int(text[:2])
    century = today.year // 100 * 100
    year = century + yy
    if future:
        if year > today.year + 50:
            year -= 100
        elif year < today.year - 50:
            year += 100
    elif year > today.year:
        year -= 100
    return iso_date(year, int(text[2:4]), int(text[4:6]), field)
