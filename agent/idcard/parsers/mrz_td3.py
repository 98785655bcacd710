"""ICAO 9303 TD3 machine readable zone (passport data page, 2 lines x 44 characters).

A passport is registered as document type ``PASSPORT`` of its issuing state, with the passport
number; every check digit must hold (number, birth, expiry, personal number, composite).

>>> from agent.idcard.samples import SyntheticPerson, td3_mrz
>>> p = SyntheticPerson("PE", "AB1234567", "ROSA", None, "QUISPE", "MAMANI", "F", "1988-11-30", None)
>>> mrz = td3_mrz(p, expiry="2031-04-02")
>>> print(mrz.decode())
P<PERQUISPE<MAMANI<<ROSA<<<<<<<<<<<<<<<<<<<<
AB12345671PER8811307F3104024<<<<<<<<<<<<<<08
>>> doc = parse_td3(mrz)
>>> doc.country, doc.document_type, doc.document_number, doc.surnames, doc.expiry
('PE', 'PASSPORT', 'AB1234567', 'QUISPE MAMANI', '2031-04-02')
"""
from __future__ import annotations

from agent.idcard.errors import InvalidIdPayload, NotAnIdDocument
from agent.idcard.parsers._text import join_names, parse_yymmdd, split_two
from agent.idcard.parsers.mrz import country_of, names, require_check, sex_of, split_lines
from agent.idcard.schema import IdDocument


def parse_td3(data: bytes) -> IdDocument:
    l1, l2 = split_lines(data, 2, 44, names_line=0)
    if l1[0] != "P":
        raise NotAnIdDocument()
    require_check(l2[0:9], l2[9], "document_number")
    require_check(l2[13:19], l2[19], "birth_date")
    require_check(l2[21:27], l2[27], "expiry")
    if l2[42] != "<" or l2[28:42].strip("<"):
        require_check(l2[28:42], l2[42], "personal_number")
    require_check(l2[0:10] + l2[13:20] + l2[21:43], l2[43], "composite")
    country = country_of(l1[2:5])
    number = l2[0:9].replace("<", "")
    if len(number) < 5:
        raise InvalidIdPayload("passport number is too short", "el numero de pasaporte es demasiado corto",
                               field="document_number")
    surnames, given = names(l1[5:44])
    if not surnames:
        raise InvalidIdPayload("MRZ has no surname", "la MRZ no tiene apellido", field="surnames")
    first_surname, second_surname = split_two(surnames)
    first_name, second_name = split_two(given)
    return IdDocument(
        country=country, document_type="PASSPORT", document_number=number,
        given_names=join_names(first_name, second_name), surnames=surnames,
        first_name=first_name, second_name=second_name,
        first_surname=first_surname, second_surname=second_surname, sex=sex_of(l2[20]),
        birth_date=parse_yymmdd(l2[13:19], "birth_date", future=False),
        blood_type=None, expiry=parse_yymmdd(l2[21:27], "expiry", future=True),
        warnings=("names_without_accents",), card_type="PASSPORT",
    )
