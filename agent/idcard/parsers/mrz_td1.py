"""ICAO 9303 TD1 machine readable zone (3 lines x 30 characters), as text bytes.

Every check digit is verified (document number, birth, expiry, composite): a misread MRZ is
refused rather than turned into a wrong person. Colombian cards carry the NUIP (the cedula
number) in line 2 [18:28]; the line-1 number is the card's own serial.

>>> from agent.idcard.samples import SyntheticPerson, td1_mrz
>>> p = SyntheticPerson("CO", "1047425328", "ANA", "MARIA", "PEÑA", "RUIZ", "F", "1990-08-22", None)
>>> mrz = td1_mrz(p, expiry="2033-01-05")
>>> print(mrz.decode())
ICCOL0001234565<<<<<<<<<<<<<<<
9008227F3301052COL1047425328<6
PENA<RUIZ<<ANA<MARIA<<<<<<<<<<
>>> doc = parse_td1(mrz)
>>> doc.document_number, doc.surnames, doc.given_names, doc.birth_date, doc.expiry
('1047425328', 'PENA RUIZ', 'ANA MARIA', '1990-08-22', '2033-01-05')
>>> parse_td1(mrz.replace(b"900822", b"900823"))
Traceback (most recent call last):
...
agent.idcard.errors.InvalidIdPayload: MRZ check digit mismatch (birth_date)
"""
from __future__ import annotations

import re

from agent.idcard.errors import InvalidIdPayload, NotAnIdDocument
from agent.idcard.parsers._text import join_names, normalize_name, parse_yymmdd, split_two
from agent.idcard.schema import IdDocument

_LINE_RE = re.compile(r"^[A-Z0-9<]{30}$")
_WEIGHTS = (7, 3, 1)
# ISO 3166 alpha-3 -> alpha-2 for the region we serve; other issuing states are refused.
_COUNTRIES = {"COL": "CO", "ARG": "AR", "CHL": "CL", "PER": "PE", "ECU": "EC", "URY": "UY",
              "BOL": "BO", "PRY": "PY", "VEN": "VE", "BRA": "BR", "MEX": "MX"}
_DOC_TYPES = {"CO": "CC", "AR": "DNI", "CL": "CI", "PE": "DNI", "EC": "CI"}


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


def split_lines(data: bytes) -> tuple[str, str, str]:
    """Three 30-character lines from newline-separated or run-together text, or NotAnIdDocument."""
    try:
        text = data.decode("ascii").strip().upper()
    except UnicodeDecodeError:
        raise NotAnIdDocument() from None
    lines = [ln.strip().replace(" ", "") for ln in text.splitlines() if ln.strip()]
    if len(lines) == 1 and len(lines[0]) == 90:
        lines = [lines[0][:30], lines[0][30:60], lines[0][60:]]
    if len(lines) != 3 or not all(_LINE_RE.match(ln) for ln in lines) or lines[0][0] not in "ACI":
        raise NotAnIdDocument()
    return lines[0], lines[1], lines[2]


def _check(value: str, digit: str, field: str) -> None:
    if check_digit(value) != digit:
        raise InvalidIdPayload(f"MRZ check digit mismatch ({field})", f"digito de control de la MRZ incorrecto ({field})",
                               field=field)


def _names(line3: str) -> tuple[str | None, str | None]:
    surname_part, _, given_part = line3.partition("<<")
    surnames = normalize_name(surname_part.replace("<", " "), "surnames")
    given = normalize_name(given_part.replace("<", " "), "given_names")
    return surnames, given


def parse_td1(data: bytes) -> IdDocument:
    """Parse a TD1 MRZ (see the module docstring)."""
    l1, l2, l3 = split_lines(data)
    _check(l1[5:14], l1[14], "document_number")
    _check(l2[0:6], l2[6], "birth_date")
    _check(l2[8:14], l2[14], "expiry")
    _check(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29], l2[29], "composite")
    warnings: list[str] = []
    state = l1[2:5].replace("<", "")
    # No check digit covers the issuing state: a misread there would invent a country, so only
    # the states this agent serves are accepted.
    country = _COUNTRIES.get(state)
    if country is None:
        raise InvalidIdPayload(f"MRZ issuing state {state!r} is not one this station serves",
                               f"el país emisor de la MRZ ({state}) no es uno de los atendidos por esta estación",
                               field="issuing_state")
    number = l1[5:14].replace("<", "")
    if country == "CO":
        nuip = l2[18:28].replace("<", "")
        if nuip.isdigit() and len(nuip) >= 3:
            number = nuip.lstrip("0")
        else:
            warnings.append("nuip_missing")
    if not number:
        raise InvalidIdPayload("MRZ has no document number", "la MRZ no tiene numero de documento",
                               field="document_number")
    sex = {"M": "M", "F": "F", "<": None, "X": "X"}.get(l2[7])
    surnames, given = _names(l3)
    if not surnames:
        raise InvalidIdPayload("MRZ has no surname", "la MRZ no tiene apellido", field="surnames")
    first_surname, second_surname = split_two(surnames)
    first_name, second_name = split_two(given)
    warnings.append("names_without_accents")  # the MRZ alphabet has no Ñ or accents
    return IdDocument(
        country=country, document_type=_DOC_TYPES.get(country, "ID"), document_number=number,
        given_names=join_names(first_name, second_name), surnames=surnames,
        first_name=first_name, second_name=second_name,
        first_surname=first_surname, second_surname=second_surname, sex=sex,
        birth_date=parse_yymmdd(l2[0:6], "birth_date", future=False),
        blood_type=None, expiry=parse_yymmdd(l2[8:14], "expiry", future=True), warnings=tuple(warnings),
    )
