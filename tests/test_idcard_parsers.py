"""Document parsers: round trips over synthetic people, damaged input, foreign codes, fuzzing."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.idcard.errors import IdCardError, InvalidIdPayload, NotAnIdDocument
from agent.idcard.parsers import parse_any
from agent.idcard.parsers.co_cedula import parse_co_cedula
from agent.idcard.samples import (SyntheticPerson, ar_dni_payload, cl_2002_payload, cl_qr_url,
                                  co_cedula_payload, random_person, td1_mrz)

CO = SyntheticPerson("CO", "1047425328", "SEBASTIÁN", "IÑAKI", "NÚÑEZ", "DE LA PEÑA", "M", "1990-08-22", "AB+")
AR = SyntheticPerson("AR", "7654321", "MARÍA", "JOSÉ", "ORDÓÑEZ", None, "F", "1961-12-31", None)
CL = SyntheticPerson("CL", "8123468-K", "ANA", None, "ÑANCO", None, "F", "1975-02-03", None)


def _names(doc):
    return (doc.first_name, doc.second_name, doc.first_surname, doc.second_surname)


@pytest.mark.parametrize("seed", range(30))
def test_co_round_trip_random_people(seed: int) -> None:
    person = random_person(random.Random(seed), "CO")
    doc = parse_any(co_cedula_payload(person, seed=seed), "PDF417")
    assert doc.document_number == person.number
    assert _names(doc) == (person.first_name, person.second_name, person.first_surname, person.second_surname)
    assert (doc.sex, doc.birth_date, doc.blood_type) == (person.sex, person.birth_date, person.blood_type)
    assert doc.warnings == ()


def test_co_accents_and_compound_names_survive_latin1() -> None:
    doc = parse_co_cedula(co_cedula_payload(CO))
    assert _names(doc) == ("SEBASTIÁN", "IÑAKI", "NÚÑEZ", "DE LA PEÑA")
    assert doc.given_names == "SEBASTIÁN IÑAKI" and doc.surnames == "NÚÑEZ DE LA PEÑA"
    assert doc.blood_type == "AB+"


def test_co_payload_copied_through_utf8_still_parses() -> None:
    mojibake = co_cedula_payload(CO).decode("latin-1").encode("utf-8")
    doc = parse_co_cedula(mojibake)
    assert doc.surnames == "NÚÑEZ DE LA PEÑA" and doc.document_number == "1047425328"


def test_co_nuls_replaced_by_spaces_keeps_offsets() -> None:
    doc = parse_co_cedula(co_cedula_payload(CO).replace(b"\x00", b" "))
    assert doc.given_names == "SEBASTIÁN IÑAKI" and doc.warnings == ()


def test_co_nul_stripped_gives_number_and_warns_instead_of_guessing_names() -> None:
    payload = co_cedula_payload(CO).replace(b"\x00", b"")
    assert payload.index(b"PubDSK_1") < 24
    doc = parse_any(payload, "PDF417")
    assert doc.document_number == "1047425328" and doc.birth_date == "1990-08-22" and doc.sex == "M"
    assert doc.given_names is None and doc.surnames is None
    assert "names_not_recoverable" in doc.warnings


def test_co_eight_digit_cedula_loses_zero_padding() -> None:
    person = SyntheticPerson("CO", "52123456", "LUZ", None, "GIL", None, "F", "1970-01-02", "O-")
    assert parse_co_cedula(co_cedula_payload(person)).document_number == "52123456"


@pytest.mark.parametrize("cut", [20, 60, 120, 150, 160])
def test_co_truncated_payload_is_an_error(cut: int) -> None:
    with pytest.raises(IdCardError):
        parse_any(co_cedula_payload(CO)[:cut], "PDF417")


def test_co_future_birth_date_is_refused() -> None:
    person = SyntheticPerson("CO", "52123456", "LUZ", None, "GIL", None, "F", "2999-01-02", "O-")
    with pytest.raises(InvalidIdPayload) as err:
        parse_co_cedula(co_cedula_payload(person))
    assert err.value.field == "birth_date" and err.value.code == "invalid_id_payload"


def test_co_unknown_blood_type_is_a_warning_not_an_error() -> None:
    payload = bytearray(co_cedula_payload(CO))
    payload[166:169] = b"Z?\x00"
    doc = parse_co_cedula(bytes(payload))
    assert doc.blood_type is None and doc.warnings == ("blood_type_unreadable",)


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "latin-1"])
def test_ar_current_format_in_every_encoding(encoding: str) -> None:
    doc = parse_any(ar_dni_payload(AR, encoding=encoding), "PDF417")
    assert (doc.country, doc.document_type, doc.document_number) == ("AR", "DNI", "7654321")
    assert doc.surnames == "ORDÓÑEZ" and doc.given_names == "MARÍA JOSÉ"
    assert doc.birth_date == "1961-12-31" and doc.sex == "F" and doc.warnings == ()


def test_ar_old_format() -> None:
    doc = parse_any(ar_dni_payload(AR, old_format=True), "PDF417")
    assert doc.document_number == "7654321" and doc.first_surname == "ORDÓÑEZ" and doc.second_name == "JOSÉ"


def test_ar_without_cuil_field_and_with_a_wrong_one() -> None:
    fields = ar_dni_payload(AR).split(b"@")
    assert parse_any(b"@".join(fields[:8]), "PDF417").warnings == ()
    wrong = str((int(fields[8][2:]) + 1) % 10).encode()
    assert parse_any(b"@".join(fields[:8] + [fields[8][:2] + wrong]), "PDF417").warnings == ("cuil_mismatch",)


def test_ar_bad_number_or_sex_is_an_error() -> None:
    fields = ar_dni_payload(AR).split(b"@")
    with pytest.raises(InvalidIdPayload):
        parse_any(b"@".join(fields[:4] + [b"12A45"] + fields[5:]), "PDF417")
    with pytest.raises(InvalidIdPayload):
        parse_any(b"@".join(fields[:3] + [b"Q"] + fields[4:]), "PDF417")


@pytest.mark.parametrize("new_host", [False, True])
def test_cl_qr_both_hosts(new_host: bool) -> None:
    url = cl_qr_url(CL, serial="A12345678" if new_host else "110515489", expiry="2031-02-03", new_host=new_host)
    doc = parse_any(url, "QRCode")
    assert (doc.country, doc.document_number, doc.birth_date, doc.expiry) == ("CL", "8123468-K", "1975-02-03",
                                                                            "2031-02-03")


@pytest.mark.parametrize("url", [
    b"https://portal.sidiv.registrocivil.cl.example.com/docstatus?RUN=8123468-K",
    b"https://example.com/docstatus?RUN=8123468-K&type=CEDULA",
    b"https://portal.sidiv.registrocivil.cl/other?RUN=8123468-K",
    b"https://www.registrocivil.cl/",
    b"WIFI:T:WPA;S:cafe;P:secret;;",
])
def test_foreign_urls_and_qr_are_not_id_documents(url: bytes) -> None:
    with pytest.raises(NotAnIdDocument):
        parse_any(url, "QRCode")


def test_cl_wrong_run_check_digit_is_refused() -> None:
    url = cl_qr_url(CL).replace(b"8123468-K", b"8123468-1")
    with pytest.raises(InvalidIdPayload):
        parse_any(url, "QRCode")


def test_cl_qr_with_damaged_mrz_keeps_number_drops_dates() -> None:
    url = cl_qr_url(CL, expiry="2031-02-03").replace(b"750203", b"750204")
    doc = parse_any(url, "QRCode")
    assert doc.birth_date is None and "mrz_dates_unreadable" in doc.warnings


def test_cl_2002_pdf417() -> None:
    doc = parse_any(cl_2002_payload(CL, expiry="2011-05-06"), "PDF417")
    assert (doc.document_number, doc.surnames, doc.expiry) == ("8123468-K", "ÑANCO", "2011-05-06")


def test_mrz_td1_runs_together_and_with_newlines() -> None:
    mrz = td1_mrz(CO, expiry="2034-06-30")
    for data in (mrz, mrz.replace(b"\n", b""), mrz.replace(b"\n", b"\r\n") + b"\n"):
        doc = parse_any(data, "MRZ")
        assert doc.document_number == "1047425328" and doc.surnames == "NUNEZ DE LA PENA"
        assert doc.expiry == "2034-06-30" and "names_without_accents" in doc.warnings


@pytest.mark.parametrize("position", [(1, 3), (1, 10), (0, 7), (1, 20)])
def test_mrz_any_corrupted_checked_character_is_refused(position: tuple[int, int]) -> None:
    lines = td1_mrz(AR).decode().split("\n")
    line, col = position
    char = lines[line][col]
    lines[line] = lines[line][:col] + ("1" if char != "1" else "2") + lines[line][col + 1:]
    with pytest.raises(InvalidIdPayload):
        parse_any("\n".join(lines).encode(), "MRZ")


@pytest.mark.parametrize("data,symbology", [
    (b"7702004003508", "EAN13"), (b"7702004003508", "PDF417"), (b"ABC-123", "Code128"),
    (b"hello world", "QRCode"), (b"", "PDF417"), (b"\xff" * 5000, "PDF417"),
])
def test_foreign_barcodes_are_not_id_documents(data: bytes, symbology: str) -> None:
    with pytest.raises(NotAnIdDocument) as err:
        parse_any(data, symbology)
    assert err.value.code == "not_an_id_document" and err.value.message_es


SYMBOLOGIES = st.sampled_from(["PDF417", "QRCode", "MRZ", "EAN13", "Code128", "DataMatrix"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700), SYMBOLOGIES)
def test_fuzz_junk_never_yields_a_person(data: bytes, symbology: str) -> None:
    with pytest.raises(IdCardError):
        parse_any(data, symbology)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=15), min_size=7, max_size=18))
def test_fuzz_at_separated_text_raises_only_domain_errors(fields: list[str]) -> None:
    data = "@".join(fields).encode("utf-8")
    try:
        doc = parse_any(data, "PDF417")
    except IdCardError:
        return
    assert doc.document_number.isdigit()  # anything accepted went through stdnum validation


def _mutations():
    payloads = [(co_cedula_payload(CO), "PDF417"), (ar_dni_payload(AR), "PDF417"), (cl_qr_url(CL), "QRCode"),
                (cl_2002_payload(CL), "PDF417"), (td1_mrz(CO), "MRZ")]
    return st.tuples(st.sampled_from(payloads), st.lists(st.tuples(st.integers(0, 600), st.integers(0, 255)),
                                                         max_size=6), st.integers(0, 600))


@settings(max_examples=400, deadline=None)
@given(_mutations())
def test_fuzz_mutated_documents_raise_only_domain_errors(case) -> None:
    (payload, symbology), flips, cut = case
    data = bytearray(payload)
    for index, value in flips:
        if index < len(data):
            data[index] = value
    try:
        doc = parse_any(bytes(data[: max(cut, 1)]), symbology)
    except IdCardError:
        return
    assert doc.document_number and doc.country in {"CO", "AR", "CL"}


def test_mrz_with_a_misread_issuing_state_is_refused_not_invented() -> None:
    """Found by the fuzzer: no check digit covers the issuing state, so '0OL' must not become a country."""
    import pytest

    from agent.idcard.errors import InvalidIdPayload
    from agent.idcard.parsers.mrz_td1 import parse_td1

    mrz = b"IC0OL0001234565<<<<<<<<<<<<<<<\n9008227M3301018COL1047425328<0\nNUNEZ<DE<LA<PENA<<SEBASTIAN<IN"
    with pytest.raises(InvalidIdPayload):
        parse_td1(mrz)
