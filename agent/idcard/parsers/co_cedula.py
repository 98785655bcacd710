"""Colombian cedula de ciudadania (yellow card with hologram): PDF417 on the back, latin-1.

Fixed offsets (half-open byte ranges) of the 531-byte payload::

    [0,2) "03"   [24,32) "PubDSK_1"   [48,58) NUIP, zero padded
    [58,81) first surname  [81,104) second surname  [104,127) first name  [127,150) second name
    [151] sex  [152,160) birth YYYYMMDD  [160,165) department+municipality
    [165] the digit "0" on real cards  [166,168) blood type (AB types to 169)

Some USB serial scanners delete the NUL padding, which moves every field: then a token fallback
recovers the number, sex, birth date and blood type, but the four names are glued together with
no way to split them, so they are left empty with a warning instead of guessing a wrong person.

>>> from agent.idcard.samples import SyntheticPerson, co_cedula_payload
>>> p = SyntheticPerson("CO", "1047425328", "SILFREDO", None, "BARRIOS", "NUÑEZ", "M", "1990-08-22", "O+")
>>> doc = parse_co_cedula(co_cedula_payload(p))
>>> doc.document_number, doc.given_names, doc.surnames, doc.birth_date, doc.blood_type, doc.sex
('1047425328', 'SILFREDO', 'BARRIOS NUÑEZ', '1990-08-22', 'O+', 'M')
>>> stripped = parse_co_cedula(co_cedula_payload(p).replace(b"\\x00", b""))
>>> stripped.document_number, stripped.given_names, stripped.warnings
('1047425328', None, ('names_not_recoverable',))
"""
from __future__ import annotations

import datetime as dt
import re

from agent.idcard.errors import InvalidIdPayload, NotAnIdDocument
from agent.idcard.parsers._text import is_ascii_digits, join_names, normalize_name, parse_yyyymmdd
from agent.idcard.schema import IdDocument

MARKER = "PubDSK_1"
_PADDING = "\x00 "
_BLOOD_TYPES = {"A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"}
# NUL-stripped layout: marker, fingerprint-card digits glued to the 10-digit NUIP, glued names,
# the byte-150 digit, sex, birth date, department (2) + municipality (3), the byte-165 digit
# (``0`` on real cards, not a NUL), blood type. The blood type may itself be written with a
# zero for O ("0+"), so byte 165 is optional and the regex backtracks into the blood type.
_FALLBACK_RE = re.compile(
    r"PubDSK_1[^0-9A-Za-z]*(?P<digits>[0-9]{10,24})(?P<names>[^0-9]*)[0-9]?"
    r"(?P<sex>[MF])(?P<birth>[0-9]{8})[0-9]{5}[ \x00]?0?(?P<blood>(?:AB|A|B|O|0)[+-])?"
)


def looks_like_co_cedula(data: bytes) -> bool:
    """Cheap test used by the dispatcher: the marker is the document's signature.

    >>> looks_like_co_cedula(b"03" + b"0" * 22 + b"PubDSK_1"), looks_like_co_cedula(b"@123@")
    (True, False)
    """
    return MARKER.encode() in data[:200]


def _to_text(data: bytes) -> str:
    """One character per original byte. A payload that went through a UTF-8 copy (every latin-1
    byte >= 0x80 became two bytes) is valid UTF-8 as a whole, binary fingerprint blocks included;
    an untouched one practically never is."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
    return text


def _number(raw: str) -> str:
    digits = raw.strip(_PADDING)
    if len(digits) != 10 or not is_ascii_digits(digits):
        raise InvalidIdPayload("cedula number is not 10 digits", "el numero de cedula no tiene 10 digitos",
                               field="document_number")
    number = digits.lstrip("0")
    if len(number) < 3:
        raise InvalidIdPayload("cedula number is too short", "el numero de cedula es demasiado corto",
                               field="document_number")
    return number


def _birth(raw: str) -> str:
    birth = parse_yyyymmdd(raw, "birth_date")
    if birth > dt.date.today().isoformat() or birth < "1900-01-01":
        raise InvalidIdPayload("birth date out of range", "fecha de nacimiento fuera de rango", field="birth_date")
    return birth


def _blood(raw: str | None, warnings: list[str]) -> str | None:
    """AB types take a third byte, so try three characters, then two."""
    for width in (3, 2):
        value = (raw or "")[:width].strip(_PADDING).upper().replace("0", "O")
        if value in _BLOOD_TYPES:
            return value
    warnings.append("blood_type_unreadable")
    return None


def _fixed(text: str) -> IdDocument:
    warnings: list[str] = []
    number = _number(text[48:58])
    surname1 = normalize_name(text[58:81].strip(_PADDING), "first_surname")
    surname2 = normalize_name(text[81:104].strip(_PADDING), "second_surname")
    name1 = normalize_name(text[104:127].strip(_PADDING), "first_name")
    name2 = normalize_name(text[127:150].strip(_PADDING), "second_name")
    if not surname1 or not name1:
        raise InvalidIdPayload("first name or first surname is empty", "falta el primer nombre o el primer apellido")
    sex = text[151]
    if sex not in "MF":
        raise InvalidIdPayload("sex is not M or F", "el sexo no es M ni F", field="sex")
    return IdDocument(
        country="CO", document_type="CC", document_number=number, card_type="CEDULA",
        given_names=join_names(name1, name2), surnames=join_names(surname1, surname2),
        first_name=name1, second_name=name2, first_surname=surname1, second_surname=surname2,
        sex=sex, birth_date=_birth(text[152:160]), blood_type=_blood(text[166:169], warnings), expiry=None,
        warnings=tuple(warnings),
    )


def _tokens(text: str) -> IdDocument:
    match = _FALLBACK_RE.search(text)
    if not match:
        raise InvalidIdPayload("damaged Colombian cedula barcode", "codigo de cedula colombiana danado")
    warnings = ["names_not_recoverable"]
    number = _number(match["digits"][-10:])
    if not match["names"].strip(_PADDING):
        raise InvalidIdPayload("no names in the barcode", "el codigo no contiene nombres")
    blood = _blood(match["blood"], warnings)
    return IdDocument(
        country="CO", document_type="CC", document_number=number, card_type="CEDULA",
        given_names=None, surnames=None, first_name=None, second_name=None,
        first_surname=None, second_surname=None, sex=match["sex"],
        birth_date=_birth(match["birth"]), blood_type=blood, expiry=None, warnings=tuple(warnings),
    )


def parse_co_cedula(data: bytes) -> IdDocument:
    """Parse the raw PDF417 bytes of a Colombian cedula (see the module docstring)."""
    if not looks_like_co_cedula(data):
        raise NotAnIdDocument()
    text = _to_text(data)
    if text[24:32] == MARKER and len(text) >= 168 and text[:2] == "03":
        return _fixed(text)
    return _tokens(text)
