"""ICAO 9303 TD1 machine readable zone (3 lines x 30 characters) of the region's ID cards.

Every check digit is verified (document number, birth, expiry, composite): a misread MRZ is
refused rather than turned into a wrong person. Where the person's number lives depends on the
country, and the line-1 "document number" is often only the card's serial (a new card, same
person), so each country is read by its own rule and the serial is kept apart in ``card_serial``:

- CO cedula digital (2020+): NUIP in line 2 [18:28] (optional data); line 1 holds the card serial.
- CL cedula: RUN in line 2's optional data as ``DIGITS<DV`` (DV a digit or K); line 1 the serial.
- AR DNI, PE DNIe: the DNI is line 1's document number.

Other issuing states are refused: where their national number lives is not known here, and a
guess could store a card serial as the person's number.

>>> from agent.idcard.samples import SyntheticPerson, td1_mrz
>>> p = SyntheticPerson("CO", "1047425328", "ANA", "MARIA", "PEÑA", "RUIZ", "F", "1990-08-22", None)
>>> mrz = td1_mrz(p, expiry="2033-01-05")
>>> print(mrz.decode())
ICCOL0001234565<<<<<<<<<<<<<<<
9008227F3301052COL1047425328<6
PENA<RUIZ<<ANA<MARIA<<<<<<<<<<
>>> doc = parse_td1(mrz)
>>> doc.document_number, doc.card_serial, doc.surnames, doc.given_names, doc.birth_date, doc.expiry
('1047425328', '000123456', 'PENA RUIZ', 'ANA MARIA', '1990-08-22', '2033-01-05')
>>> parse_td1(mrz.replace(b"900822", b"900823"))
Traceback (most recent call last):
...
agent.idcard.errors.InvalidIdPayload: MRZ check digit mismatch (birth_date)
"""
from __future__ import annotations

import re

from stdnum.ar import dni as ar_dni
from stdnum.cl import rut

from agent.idcard.errors import InvalidIdPayload, NotAnIdDocument
from agent.idcard.parsers._text import is_ascii_digits, join_names, parse_yymmdd, split_two
from agent.idcard.parsers.mrz import check_digit, country_of, names, require_check, sex_of, split_lines
from agent.idcard.schema import IdDocument

__all__ = ["check_digit", "parse_td1", "split_lines_td1"]

_RUN_RE = re.compile(r"^(?P<body>[0-9]{6,8})<(?P<dv>[0-9K])<*$")
_REGISTRY_TYPES = {"CO": "CC", "CL": "RUT", "AR": "DNI", "PE": "DNI"}
_CARD_TYPES = {"CO": "CEDULA_DIGITAL", "CL": "CEDULA", "AR": "DNI", "PE": "DNIE"}


def split_lines_td1(data: bytes) -> tuple[str, str, str]:
    l1, l2, l3 = split_lines(data, 3, 30, names_line=2)
    if l1[0] not in "ACI":
        raise NotAnIdDocument()
    return l1, l2, l3


def _missing(what_en: str, what_es: str) -> InvalidIdPayload:
    return InvalidIdPayload(f"the MRZ holds no {what_en}", f"la MRZ no contiene {what_es}", field="document_number")


def _co_nuip(l2: str) -> str:
    nuip = l2[18:28].replace("<", "")
    if not is_ascii_digits(nuip) or len(nuip.lstrip("0")) < 3:
        raise _missing("NUIP (cedula number)", "el NUIP (numero de cedula)")
    return nuip.lstrip("0")


def _cl_run(l2: str) -> str:
    match = _RUN_RE.match(l2[18:29])
    if not match:
        raise _missing("RUN", "el RUN")
    body = match["body"].lstrip("0")
    if not rut.is_valid(body + match["dv"]):
        raise InvalidIdPayload("RUN check digit is wrong", "el digito verificador del RUN es incorrecto",
                               field="document_number")
    return f"{body}-{match['dv']}"


def _dni(l1: str) -> str:
    number = l1[5:14].replace("<", "").lstrip("0")
    if not is_ascii_digits(number) or not ar_dni.is_valid(number):
        raise _missing("DNI number", "el numero de DNI")
    return number


def person_number(country: str, l1: str, l2: str) -> str:
    if country == "CO":
        return _co_nuip(l2)
    if country == "CL":
        return _cl_run(l2)
    if country in ("AR", "PE"):
        return _dni(l1)
    raise InvalidIdPayload(f"ID-card MRZ of {country} is not supported", f"la MRZ de cedulas de {country} no esta soportada",
                           field="issuing_state")


def parse_td1(data: bytes) -> IdDocument:
    """Parse a TD1 MRZ (see the module docstring)."""
    l1, l2, l3 = split_lines_td1(data)
    require_check(l1[5:14], l1[14], "document_number")
    require_check(l2[0:6], l2[6], "birth_date")
    require_check(l2[8:14], l2[14], "expiry")
    require_check(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29], l2[29], "composite")
    country = country_of(l1[2:5])
    number = person_number(country, l1, l2)
    serial = l1[5:14].replace("<", "")
    surnames, given = names(l3)
    if not surnames:
        raise InvalidIdPayload("MRZ has no surname", "la MRZ no tiene apellido", field="surnames")
    first_surname, second_surname = split_two(surnames)
    first_name, second_name = split_two(given)
    return IdDocument(
        country=country, document_type=_REGISTRY_TYPES[country], document_number=number,
        given_names=join_names(first_name, second_name), surnames=surnames,
        first_name=first_name, second_name=second_name,
        first_surname=first_surname, second_surname=second_surname, sex=sex_of(l2[7]),
        birth_date=parse_yymmdd(l2[0:6], "birth_date", future=False),
        blood_type=None, expiry=parse_yymmdd(l2[8:14], "expiry", future=True),
        warnings=("names_without_accents",),  # the MRZ alphabet has no Ñ or accents
        card_type=_CARD_TYPES[country], card_serial=serial if serial != number else None,
    )
