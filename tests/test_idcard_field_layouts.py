"""Real-payload findings, reproduced with synthetic people in the real layouts: the Colombian blood
type after a '0' byte, the Chilean RUN in the MRZ's line 2, short MRZ lines, the Argentine 2026 QR,
one document-type vocabulary with the customer registry, passports (TD3)."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.customers.documents import validate_document
from agent.idcard.errors import IdCardError, InvalidIdPayload, NotAnIdDocument
from agent.idcard.parsers import parse_any
from agent.idcard.samples import (SyntheticPerson, ar_dni_payload, ar_dni_qr_2026, cl_2002_payload, cl_qr_url,
                                  co_cedula_payload, random_person, td1_mrz, td3_mrz)

CL = SyntheticPerson("CL", "15988779-0", "ANA", "SOFIA", "ROJAS", "ÑANCO", "F", "1984-07-09", None)
CL_K = SyntheticPerson("CL", "8123468-K", "LUIS", None, "SOTO", None, "M", "1975-02-03", None)
CO = SyntheticPerson("CO", "1047425328", "SEBASTIÁN", None, "NÚÑEZ", "PEÑA", "M", "1990-08-22", "O+")
AR = SyntheticPerson("AR", "23456789", "JUAN", "IGNACIO", "MUÑOZ", "DE LA SERNA", "M", "1985-03-04", None)
PE = SyntheticPerson("PE", "44556677", "ROSA", None, "QUISPE", "MAMANI", "F", "1988-11-30", None)


# --- Colombia: byte 165 is the digit '0' on real cards ---------------------------------------

@pytest.mark.parametrize("blood", ["O+", "O-", "A+", "A-", "B+", "B-", "AB+", "AB-"])
def test_co_blood_type_survives_nul_stripping_with_the_real_zero_byte(blood: str) -> None:
    person = SyntheticPerson("CO", "52123456", "LUZ", None, "GIL", None, "F", "1970-01-02", blood)
    payload = co_cedula_payload(person)
    assert payload[165:166] == b"0"  # the real layout, not a NUL
    assert parse_any(payload, "PDF417").blood_type == blood
    stripped = parse_any(payload.replace(b"\x00", b""), "PDF417")
    assert stripped.blood_type == blood and "blood_type_unreadable" not in stripped.warnings


def test_co_blood_type_written_with_a_zero_for_o_after_the_zero_byte() -> None:
    payload = bytearray(co_cedula_payload(CO))
    payload[166:168] = b"0+"
    assert parse_any(bytes(payload).replace(b"\x00", b""), "PDF417").blood_type == "O+"


def test_co_nul_at_byte_165_still_reads() -> None:
    payload = co_cedula_payload(CO, byte165=b"\x00")
    assert parse_any(payload.replace(b"\x00", b""), "PDF417").blood_type == "O+"


# --- Chile: RUN from line 2, card serial apart ----------------------------------------------

@pytest.mark.parametrize("person", [CL, CL_K], ids=["digit_dv", "k_dv"])
def test_cl_mrz_gives_the_run_and_keeps_the_card_serial_apart(person: SyntheticPerson) -> None:
    mrz = td1_mrz(person, card_serial="A12345678")
    doc = parse_any(mrz, "MRZ")
    assert (doc.country, doc.document_type, doc.document_number) == ("CL", "RUT", person.number)
    assert doc.card_serial == "A12345678" and doc.card_type == "CEDULA"
    from_qr = parse_any(cl_qr_url(person, serial="A12345678"), "QRCode")
    assert (from_qr.document_type, from_qr.document_number) == (doc.document_type, doc.document_number)


def _with_line2_optional(mrz: bytes, optional: str) -> bytes:
    from agent.idcard.parsers.mrz import check_digit

    l1, l2, l3 = mrz.decode().split("\n")
    l2 = l2[:18] + optional.ljust(11, "<")
    l2 += check_digit(l1[5:30] + l2[0:7] + l2[8:15] + l2[18:29])
    return f"{l1}\n{l2}\n{l3}".encode()


@pytest.mark.parametrize("optional,code", [("", "the MRZ holds no RUN"), ("15988779<1", "RUN check digit is wrong"),
                                           ("ABC", "the MRZ holds no RUN")])
def test_cl_mrz_without_a_valid_run_is_refused_not_read_as_the_serial(optional: str, code: str) -> None:
    with pytest.raises(InvalidIdPayload) as err:
        parse_any(_with_line2_optional(td1_mrz(CL), optional), "MRZ")
    assert str(err.value) == code and err.value.field == "document_number"


def test_co_mrz_without_nuip_is_refused_not_read_as_the_serial() -> None:
    with pytest.raises(InvalidIdPayload) as err:
        parse_any(_with_line2_optional(td1_mrz(CO), ""), "MRZ")
    assert "NUIP" in str(err.value)


def test_co_mrz_and_pdf417_give_the_same_customer_key() -> None:
    mrz, pdf = parse_any(td1_mrz(CO), "MRZ"), parse_any(co_cedula_payload(CO), "PDF417")
    assert (mrz.country, mrz.document_type, mrz.document_number) == (pdf.country, pdf.document_type,
                                                                     pdf.document_number)
    assert mrz.card_type == "CEDULA_DIGITAL" and pdf.card_type == "CEDULA"


def test_ar_and_pe_mrz_numbers_are_line_one() -> None:
    for person in (AR, PE):
        doc = parse_any(td1_mrz(person), "MRZ")
        assert (doc.country, doc.document_type, doc.document_number, doc.card_serial) == (
            person.country, "DNI", person.number, None)


def test_mrz_of_a_state_whose_layout_is_unknown_is_refused() -> None:
    ec = SyntheticPerson("EC", "1714307103", "ANA", None, "VERA", None, "F", "1980-01-01", None)
    with pytest.raises(InvalidIdPayload) as err:
        parse_any(td1_mrz(ec), "MRZ")
    assert err.value.field == "issuing_state"


# --- short MRZ lines ---------------------------------------------------------------------------

def _trim(mrz: bytes, keep: tuple[int, int, int]) -> bytes:
    return b"\n".join(line[:n] for line, n in zip(mrz.split(b"\n"), keep))


@pytest.mark.parametrize("keep", [(30, 30, 27), (30, 30, 28), (15, 30, 30), (16, 30, 9)])
def test_mrz_lines_missing_trailing_filler_still_parse(keep: tuple[int, int, int]) -> None:
    mrz = td1_mrz(SyntheticPerson("CO", "52123456", "LUZ", None, "GIL", None, "F", "1970-01-02", None))
    assert parse_any(_trim(mrz, keep), "MRZ") == parse_any(mrz, "MRZ")


@pytest.mark.parametrize("keep", [(30, 29, 30), (14, 30, 30), (30, 20, 30)])
def test_mrz_lines_missing_checked_characters_are_refused(keep: tuple[int, int, int]) -> None:
    with pytest.raises(IdCardError):
        parse_any(_trim(td1_mrz(CO), keep), "MRZ")


def test_mrz_line_longer_than_thirty_is_not_a_td1() -> None:
    lines = td1_mrz(CO).split(b"\n")
    with pytest.raises(NotAnIdDocument):
        parse_any(b"\n".join([lines[0] + b"<", lines[1], lines[2]]), "MRZ")


PEOPLE = st.sampled_from([CL, CL_K, CO, AR, PE])


@settings(max_examples=300, deadline=None)
@given(PEOPLE, st.lists(st.integers(0, 30), min_size=3, max_size=3),
       st.lists(st.tuples(st.integers(0, 2), st.integers(0, 29), st.sampled_from("0123456789<ABKOISZ")), max_size=3))
def test_fuzz_damaged_mrz_is_refused_or_is_exactly_the_person(person, cuts, flips) -> None:
    """Cut lines short and change characters: a result is either an error or the true document
    (a change in an unchecked spot, e.g. a name or filler, may still give the same key fields)."""
    truth = parse_any(td1_mrz(person), "MRZ")
    lines = [list(line) for line in td1_mrz(person).decode().split("\n")]
    for line, col, char in flips:
        lines[line][col] = char
    data = "\n".join("".join(line)[:max(cut, 1)] for line, cut in zip(lines, cuts)).encode()
    try:
        doc = parse_any(data, "MRZ")
    except IdCardError:
        return
    key = ("country", "document_type", "document_number", "birth_date", "expiry", "sex")
    assert {k: getattr(doc, k) for k in key} == {k: getattr(truth, k) for k in key}


# --- Argentina: the 2026 QR ------------------------------------------------------------------

@pytest.mark.parametrize("symbology", ["QRCode", "PDF417"])
def test_ar_2026_qr(symbology: str) -> None:
    doc = parse_any(ar_dni_qr_2026(AR), symbology)
    assert (doc.country, doc.document_type, doc.document_number) == ("AR", "DNI", "23456789")
    assert (doc.first_surname, doc.second_surname, doc.first_name, doc.second_name) == (
        "MUÑOZ", "DE LA SERNA", "JUAN", "IGNACIO")
    assert doc.birth_date == "1985-03-04" and doc.sex is None and doc.card_type == "DNI_2026"


def test_ar_2026_qr_token_may_hold_at_signs() -> None:
    assert parse_any(ar_dni_qr_2026(AR, token="abc@def@ghi"), "QRCode").document_number == "23456789"


@pytest.mark.parametrize("change,message", [
    ({"tramite": "123"}, "tramite number is not 11 digits"),
    ({"issue": "2005-01-01"}, "issue date before birth date"),
    ({"token": ""}, "the QR has no signed token"),
])
def test_ar_2026_qr_damaged(change: dict, message: str) -> None:
    born_2010 = SyntheticPerson("AR", "50123456", "ANA", None, "SOSA", None, "F", "2010-05-06", None)
    with pytest.raises(InvalidIdPayload) as err:
        parse_any(ar_dni_qr_2026(born_2010, **change), "QRCode")
    assert str(err.value) == message


def test_ar_2026_qr_birth_date_is_never_in_the_future() -> None:
    young = SyntheticPerson("AR", "50123456", "ANA", None, "SOSA", None, "F", "2010-05-06", None)
    old = SyntheticPerson("AR", "4123456", "ANA", None, "SOSA", None, "F", "1940-05-06", None)
    assert parse_any(ar_dni_qr_2026(young), "QRCode").birth_date == "2010-05-06"
    assert parse_any(ar_dni_qr_2026(old), "QRCode").birth_date == "1940-05-06"


# --- one vocabulary with the customer registry ---------------------------------------------

def _all_documents(seed: int):
    rng = random.Random(seed)
    co, ar, cl, pe = (random_person(rng, c) for c in ("CO", "AR", "CL", "AR"))
    pe = SyntheticPerson("PE", pe.number[-8:].zfill(8), pe.first_name, None, pe.first_surname, None, pe.sex,
                         pe.birth_date, None)
    yield parse_any(co_cedula_payload(co), "PDF417")
    yield parse_any(td1_mrz(co), "MRZ")
    yield parse_any(ar_dni_payload(ar), "PDF417")
    yield parse_any(ar_dni_payload(ar, old_format=True), "PDF417")
    yield parse_any(ar_dni_qr_2026(ar), "QRCode")
    yield parse_any(td1_mrz(ar), "MRZ")
    yield parse_any(cl_qr_url(cl), "QRCode")
    yield parse_any(cl_qr_url(cl, doc_type="CEDULA_EXT", new_host=True), "QRCode")
    yield parse_any(cl_2002_payload(cl), "PDF417")
    yield parse_any(td1_mrz(cl), "MRZ")
    yield parse_any(td1_mrz(pe), "MRZ")


@pytest.mark.parametrize("seed", range(5))
def test_every_document_type_is_the_registry_type(seed: int) -> None:
    """What the decoder says is what the POS looks the customer up with: same type, valid number."""
    for doc in _all_documents(seed):
        registered = validate_document(doc.country, doc.document_type, doc.document_number)
        assert registered.type == doc.document_type
        assert doc.card_type, doc


# --- passports (TD3) --------------------------------------------------------------------------

def test_td3_passport() -> None:
    person = SyntheticPerson("CO", "AB1234567", "ANA", "LUCIA", "GIL", "ROJAS", "F", "1988-11-30", None)
    doc = parse_any(td3_mrz(person, expiry="2031-04-02"), "MRZ")
    assert (doc.country, doc.document_type, doc.document_number, doc.expiry) == ("CO", "PASSPORT", "AB1234567",
                                                                                "2031-04-02")
    assert validate_document(doc.country, doc.document_type, doc.document_number).number == "AB1234567"
    assert parse_any(td3_mrz(person).split(b"\n")[0][:20] + b"\n" + td3_mrz(person).split(b"\n")[1], "MRZ")


def test_td3_from_a_state_not_served_is_refused() -> None:
    person = SyntheticPerson("XX", "AB1234567", "ANA", None, "GIL", None, "F", "1988-11-30", None)
    with pytest.raises(InvalidIdPayload) as err:
        parse_any(td3_mrz(person), "MRZ")
    assert err.value.field == "issuing_state" and "UTO" in err.value.es
