"""Synthetic people and their barcode payloads, in each document's real layout.

Used by doctests, tests, the CLI's self-check and the benchmark corpus. Every person here is
made up (random picks from common name lists); never put a real person's data in fixtures.
"""
from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass

from stdnum.ar import cuit
from stdnum.cl import rut

from agent.idcard.parsers.mrz import check_digit


@dataclass(frozen=True)
class SyntheticPerson:
    country: str
    number: str  # CO: NUIP digits; AR: DNI digits; CL: RUN "12345678-K"
    first_name: str
    second_name: str | None
    first_surname: str
    second_surname: str | None
    sex: str
    birth_date: str  # ISO
    blood_type: str | None


def _pad(text: str | None, width: int, encoding: str = "latin-1") -> bytes:
    raw = (text or "").encode(encoding)
    return raw[:width].ljust(width, b"\x00")


def co_cedula_payload(person: SyntheticPerson, *, afis: str = "02345678", card: str = "1234567",
                      seed: int = 0, byte165: bytes = b"0") -> bytes:
    """531 bytes, latin-1, fixed offsets (see :mod:`agent.idcard.parsers.co_cedula`).

    As on real cards, the byte before the blood type (165) is the digit ``0``, not a NUL: a
    scanner that deletes NULs then glues the blood type to that digit (``...05001 0O+``)."""
    rnd = random.Random(seed)
    out = bytearray(531)
    out[0:2] = b"03"
    out[2:10] = afis.encode()[:8].ljust(8, b"0")
    out[24:32] = b"PubDSK_1"
    out[40:48] = _pad(card, 8)
    out[48:58] = person.number.zfill(10).encode()
    out[58:81] = _pad(person.first_surname, 23)
    out[81:104] = _pad(person.second_surname, 23)
    out[104:127] = _pad(person.first_name, 23)
    out[127:150] = _pad(person.second_name, 23)
    out[150:151] = b"0"
    out[151:152] = person.sex.encode()
    out[152:160] = person.birth_date.replace("-", "").encode()
    out[160:165] = b"05001"
    out[165:166] = byte165
    out[166:168] = (person.blood_type or "").encode()[:2].ljust(2, b"\x00")
    if person.blood_type and len(person.blood_type) == 3:  # AB+ / AB- take [166,169)
        out[166:169] = person.blood_type.encode()
    # Fingerprint blocks: binary noise, as on the card (never valid UTF-8 by accident).
    out[170:491] = bytes(rnd.randrange(256) for _ in range(321))
    return bytes(out)


def _ddmmyyyy(iso: str) -> str:
    y, m, d = iso.split("-")
    return f"{d}/{m}/{y}"


def ar_dni_payload(person: SyntheticPerson, *, old_format: bool = False, tramite: str = "00512345678",
                   issue: str = "2015-06-01", encoding: str = "utf-8") -> bytes:
    """Current (9 fields with CUIL) or old (17 fields) Argentine DNI PDF417 text."""
    surnames = " ".join(p for p in (person.first_surname, person.second_surname) if p)
    given = " ".join(p for p in (person.first_name, person.second_name) if p)
    if old_format:
        fields = ["", f"{person.number:<9}", "A", "1", surnames, given, "ARGENTINA",
                  _ddmmyyyy(person.birth_date), person.sex, _ddmmyyyy(issue), tramite,
                  "1234", "", "", "", "", ""]
    else:
        prefix = "27" if person.sex == "F" else "20"
        check = cuit.calc_check_digit(prefix + person.number.zfill(8))
        fields = [tramite, surnames, given, person.sex, person.number, "A",
                  _ddmmyyyy(person.birth_date), _ddmmyyyy(issue), prefix + check]
    return "@".join(fields).encode(encoding)


def ar_dni_qr_2026(person: SyntheticPerson, *, tramite: str = "00698765432", ejemplar: str = "B",
                   issue: str = "2026-03-02", token: str = "eyJhbGciOiJFUzI1NiJ9.eyJ2IjoxfQ.c2lnbmF0dXJl") -> bytes:
    """The QR of DNIs issued from 2026: no sex, two-digit years, a signed token (made up here)."""
    surnames = " ".join(p for p in (person.first_surname, person.second_surname) if p)
    given = " ".join(p for p in (person.first_name, person.second_name) if p)
    birth, issued = _ddmmyyyy(person.birth_date), _ddmmyyyy(issue)
    fields = [tramite, surnames, given, person.number, ejemplar, birth[:6] + birth[8:], issued[:6] + issued[8:], token]
    return "@".join(fields).encode("utf-8")


def _yymmdd(iso: str) -> str:
    return iso[2:4] + iso[5:7] + iso[8:10]


def cl_qr_url(person: SyntheticPerson, *, serial: str = "110515489", expiry: str = "2030-01-01",
              new_host: bool = False, doc_type: str = "CEDULA") -> bytes:
    """The URL a Chilean cedula QR holds (old or 2025 host)."""
    docnum = serial[:9].rjust(9, "<")
    mrz = (docnum + check_digit(docnum) + _yymmdd(person.birth_date) + check_digit(_yymmdd(person.birth_date))
           + _yymmdd(expiry) + check_digit(_yymmdd(expiry)))
    if new_host:
        base = "https://portal.nuevosidiv.registrocivil.cl/document-validity"
    else:
        base = "https://portal.sidiv.registrocivil.cl/docstatus"
    return f"{base}?RUN={person.number}&type={doc_type}&serial={serial}&mrz={mrz}".encode("ascii")


def cl_2002_payload(person: SyntheticPerson, *, expiry: str = "2010-01-01", serial: str = "0012345678") -> bytes:
    """2002-era Chilean PDF417: 419+ characters with fixed offsets."""
    run = rut.compact(person.number).rjust(9)
    text = (run + " " * 10 + person.first_surname.ljust(30)[:30] + "CHL" + _yymmdd(expiry) + serial.ljust(10)[:10])
    return text.encode("latin-1").ljust(420, b" ")


_ALPHA3 = {"CO": "COL", "AR": "ARG", "CL": "CHL", "PE": "PER", "EC": "ECU"}


def _mrz_name(text: str | None) -> str:
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return ascii_text.upper().replace(" ", "<").replace("-", "<")


def _td1_numbers(person: SyntheticPerson, card_serial: str) -> tuple[str, str]:
    """(line-1 document number, line-2 optional data) where each country really puts them."""
    if person.country == "CO":  # card serial in line 1, NUIP in line 2
        return card_serial, person.number
    if person.country == "CL":  # card serial in line 1, RUN as DIGITS<DV in line 2
        body, dv = rut.compact(person.number)[:-1], rut.compact(person.number)[-1]
        return card_serial, f"{body}<{dv}"
    return person.number, ""  # AR, PE: the DNI is line 1's number


def td1_mrz(person: SyntheticPerson, *, expiry: str = "2033-01-01", card_serial: str = "000123456") -> bytes:
    """Three 30-character TD1 lines with valid check digits, newline separated."""
    state = _ALPHA3.get(person.country, "UTO")
    number, optional2 = _td1_numbers(person, card_serial)
    docnum = number[:9].ljust(9, "<")
    l1 = f"I{'C' if person.country == 'CO' else 'D'}{state}{docnum}{check_digit(docnum)}".ljust(30, "<")
    optional2 = optional2.ljust(11, "<")
    birth, exp = _yymmdd(person.birth_date), _yymmdd(expiry)
    l2 = f"{birth}{check_digit(birth)}{person.sex}{exp}{check_digit(exp)}{state}{optional2}"
    l2 += check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29])
    return f"{l1}\n{l2}\n{_mrz_names(person, 30)}".encode("ascii")


def _mrz_names(person: SyntheticPerson, width: int) -> str:
    surnames = "<".join(_mrz_name(s) for s in (person.first_surname, person.second_surname) if s)
    given = "<".join(_mrz_name(s) for s in (person.first_name, person.second_name) if s)
    return f"{surnames}<<{given}"[:width].ljust(width, "<")


def td3_mrz(person: SyntheticPerson, *, expiry: str = "2033-01-01") -> bytes:
    """Two 44-character passport lines (``person.number`` is the passport number)."""
    state = _ALPHA3.get(person.country, "UTO")
    docnum = person.number[:9].ljust(9, "<")
    birth, exp = _yymmdd(person.birth_date), _yymmdd(expiry)
    l1 = f"P<{state}{_mrz_names(person, 39)}"
    l2 = f"{docnum}{check_digit(docnum)}{state}{birth}{check_digit(birth)}{person.sex}{exp}{check_digit(exp)}"
    l2 += "<" * 14 + check_digit("<" * 14)
    l2 += check_digit(l2[0:10] + l2[13:20] + l2[21:43])
    return f"{l1}\n{l2}".encode("ascii")


_FIRST = ["ANA", "LUZ", "MARÍA", "JOSÉ", "SEBASTIÁN", "IÑAKI", "VALENTINA", "ANDRÉS", "CAMILO", "SOFÍA",
          "JULIÁN", "MARTÍN", "PAULA", "RAÚL", "NOEMÍ", "ÁNGEL", "BEATRIZ", "TOMÁS", "ELENA", "JOAQUÍN"]
_SURNAMES = ["PEÑA", "MUÑOZ", "GARCÍA", "RODRÍGUEZ", "LÓPEZ", "NÚÑEZ", "IBÁÑEZ", "CASTAÑO", "GÓMEZ",
             "DÍAZ", "PÉREZ", "OCAMPO", "ÁLVAREZ", "ZÚÑIGA", "BARRIOS", "VALENCIA", "ORDÓÑEZ", "RUIZ"]


def random_person(rng: random.Random, country: str) -> SyntheticPerson:
    """A made-up person with a valid number for ``country`` (CO, AR or CL)."""
    sex = rng.choice("MF")
    birth = f"{rng.randint(1940, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    second_name = rng.choice(_FIRST) if rng.random() < 0.6 else None
    second_surname = rng.choice(_SURNAMES) if rng.random() < 0.85 else None
    if country == "CO":
        number = str(rng.choice([rng.randint(10_000_000, 99_999_999), rng.randint(1_000_000_000, 1_199_999_999)]))
    elif country == "AR":
        number = str(rng.randint(10_000_000, 45_000_000))
    else:
        body = str(rng.randint(5_000_000, 25_000_000))
        number = f"{body}-{rut.calc_check_digit(body)}"
    blood = rng.choice(["O+", "O-", "A+", "A-", "B+", "AB+"]) if country == "CO" else None
    return SyntheticPerson(country, number, rng.choice(_FIRST), second_name, rng.choice(_SURNAMES),
                           second_surname, sex, birth, blood)
