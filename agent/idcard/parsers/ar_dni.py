"""Argentine DNI: PDF417 on the front, '@'-separated text, no ECI (UTF-8 first, then cp1252).

Current format (8 or 9 fields)::

    tramite @ surnames @ given names @ sex @ DNI @ ejemplar @ birth dd/mm/yyyy @ issue dd/mm/yyyy [@ CUIL xyz]

where the optional last field is the CUIL prefix (2 digits) and check digit (1), cross-checked
with ``stdnum.ar.cuit``. Cards issued from 2026 may carry a QR instead, with no sex and two-digit
years, ending in a signed token we do not interpret::

    tramite @ SURNAMES @ NAMES @ DNI @ ejemplar @ birth dd/mm/yy @ issue dd/mm/yy @ token
 Old format (2009-2012 cards) starts with '@' and has more than 10 fields:
[1] DNI [2] ejemplar [4] surname [5] names [6] nationality [7] birth [8] sex [9] issue [10] tramite.

>>> from agent.idcard.samples import SyntheticPerson, ar_dni_payload, ar_dni_qr_2026
>>> p = SyntheticPerson("AR", "23456789", "JUAN", "IGNACIO", "MUÑOZ", "DE LA SERNA", "M", "1985-03-04", None)
>>> payload = ar_dni_payload(p)
>>> payload.decode().split("@")[1:7]
['MUÑOZ DE LA SERNA', 'JUAN IGNACIO', 'M', '23456789', 'A', '04/03/1985']
>>> doc = parse_ar_dni(payload)
>>> doc.document_number, doc.first_surname, doc.second_surname, doc.first_name, doc.warnings
('23456789', 'MUÑOZ', 'DE LA SERNA', 'JUAN', ())
>>> parse_ar_dni(ar_dni_payload(p, old_format=True)).birth_date
'1985-03-04'
>>> parse_ar_dni(payload[:-4] + b"@209").warnings  # wrong CUIL check digit
('cuil_mismatch',)
>>> qr = parse_ar_dni(ar_dni_qr_2026(p))
>>> qr.document_number, qr.birth_date, qr.sex, qr.card_type, qr.warnings
('23456789', '1985-03-04', None, 'DNI_2026', ('sex_not_in_barcode',))
"""
from __future__ import annotations

from stdnum.ar import cuit, dni

from agent.idcard.errors import InvalidIdPayload, NotAnIdDocument
import re

from agent.idcard.parsers._text import (decode_payload, is_ascii_digits, iso_date, join_names, normalize_name,
                                        parse_ddmmyyyy, parse_yymmdd, split_two)
from agent.idcard.schema import IdDocument

_SEXES = {"M": "M", "F": "F", "X": "X"}


def looks_like_ar_dni(data: bytes) -> bool:
    """Cheap signature test used by the dispatcher.

    >>> looks_like_ar_dni(b"00123456789@A@B@M@12345678@A@01/01/1990@01/01/2015"), looks_like_ar_dni(b"hello")
    (True, False)
    """
    return data.count(b"@") >= 7


def _dni_number(raw: str) -> str:
    number = raw.strip().lstrip("0")
    if not is_ascii_digits(number) or not dni.is_valid(number):
        raise InvalidIdPayload("DNI number is not valid", "el numero de DNI no es valido", field="document_number")
    return number


def _sex(raw: str) -> str:
    sex = _SEXES.get(raw.strip().upper())
    if sex is None:
        raise InvalidIdPayload("sex is not M, F or X", "el sexo no es M, F ni X", field="sex")
    return sex


def _cuil_warning(prefix_and_check: str, number: str) -> list[str]:
    value = prefix_and_check.strip()
    if len(value) != 3 or not is_ascii_digits(value):
        return ["cuil_unreadable"]
    return [] if cuit.is_valid(value[:2] + number.zfill(8) + value[2]) else ["cuil_mismatch"]


_DDMMYY_RE = re.compile(r"^(\d{2})/(\d{2})/(\d{2})$")


def _ddmmyy(text: str, field: str, *, birth: bool) -> str:
    """``04/03/85`` -> ISO; a birth date is never in the future (that fixes its century)."""
    match = _DDMMYY_RE.match(text.strip())
    if not match:
        raise InvalidIdPayload(f"{field} is not a date", f"el campo {field} no es una fecha", field=field)
    day, month, year = match.groups()
    if birth:
        return parse_yymmdd(year + month + day, field, future=False)
    return iso_date(2000 + int(year), int(month), int(day), field)  # cards issued from 2026


def _is_qr_2026(fields: list[str]) -> bool:
    return len(fields) == 8 and is_ascii_digits(fields[3].strip()) and bool(_DDMMYY_RE.match(fields[5].strip()))


def _parse_qr_2026(fields: list[str]) -> IdDocument:
    _tramite(fields[0])
    number = _dni_number(fields[3])
    birth = _ddmmyy(fields[5], "birth_date", birth=True)
    if _ddmmyy(fields[6], "issue_date", birth=False) <= birth:
        raise InvalidIdPayload("issue date before birth date", "fecha de emision anterior al nacimiento",
                               field="issue_date")
    if not fields[7].strip():
        raise InvalidIdPayload("the QR has no signed token", "el QR no tiene el token firmado")
    return _build(number, fields[1], fields[2], None, birth, ["sex_not_in_barcode"], "DNI_2026")


def _tramite(raw: str) -> None:
    tramite = raw.strip()
    if len(tramite) != 11 or not is_ascii_digits(tramite):
        raise InvalidIdPayload("tramite number is not 11 digits", "el numero de tramite no tiene 11 digitos")


def _build(number: str, surnames_raw: str, given_raw: str, sex: str | None, birth: str, warnings: list[str],
           card_type: str) -> IdDocument:
    surnames = normalize_name(surnames_raw, "surnames")
    given = normalize_name(given_raw, "given_names")
    if not surnames or not given:
        raise InvalidIdPayload("names are empty", "faltan nombres o apellidos")
    first_surname, second_surname = split_two(surnames)
    first_name, second_name = split_two(given)
    return IdDocument(
        country="AR", document_type="DNI", document_number=number,
        given_names=join_names(first_name, second_name), surnames=surnames,
        first_name=first_name, second_name=second_name,
        first_surname=first_surname, second_surname=second_surname, sex=sex,
        birth_date=birth, blood_type=None, expiry=None, warnings=tuple(warnings), card_type=card_type,
    )


def parse_ar_dni(data: bytes) -> IdDocument:
    """Parse the raw PDF417 bytes of an Argentine DNI (see the module docstring)."""
    if not looks_like_ar_dni(data):
        raise NotAnIdDocument()
    text = decode_payload(data).rstrip("\r\n")
    fields = text.split("@")
    if len(fields) > 10 and fields[0] == "":
        # old format
        number = _dni_number(fields[1])
        return _build(number, fields[4], fields[5], _sex(fields[8]),
                      parse_ddmmyyyy(fields[7], "birth_date"), [], "DNI_2009")
    if len(fields) >= 8 and _is_qr_2026(text.split("@", 7)):
        return _parse_qr_2026(text.split("@", 7))  # the token is opaque: it may hold anything
    if len(fields) not in (8, 9):
        raise NotAnIdDocument()
    _tramite(fields[0])
    number = _dni_number(fields[4])
    warnings = _cuil_warning(fields[8], number) if len(fields) == 9 else []
    parse_ddmmyyyy(fields[7], "issue_date")  # validated only: a junk issue date means a misread
    return _build(number, fields[1], fields[2], _sex(fields[3]), parse_ddmmyyyy(fields[6], "birth_date"), warnings,
                  "DNI")
