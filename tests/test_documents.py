"""Identity document validation, including property-based tests over generated RUTs."""
from __future__ import annotations

import pytest
from hypothesis import given, settings as hsettings, strategies as st
from stdnum.cl import rut

from agent.customers.documents import DocumentError, document_types, validate_document


def rut_spellings(body: int) -> list[str]:
    digits = str(body)
    check = rut.calc_check_digit(digits)
    dotted = f"{body:,}".replace(",", ".")
    return [f"{dotted}-{check}", f"{digits}-{check}", f"{digits}{check}", f"{digits}-{check.lower()}",
            f" {dotted}-{check} "]


@given(st.integers(min_value=1_000_000, max_value=99_999_999))
def test_every_accepted_rut_spelling_compacts_to_the_same_number(body: int) -> None:
    numbers = {validate_document("CL", "RUT", s).number for s in rut_spellings(body)}
    assert numbers == {f"{body}{rut.calc_check_digit(str(body))}"}


@given(st.integers(min_value=1_000_000, max_value=99_999_999), st.sampled_from("0123456789K"))
def test_a_wrong_rut_check_digit_is_refused_and_named(body: int, digit: str) -> None:
    correct = rut.calc_check_digit(str(body))
    if digit == correct:
        return
    with pytest.raises(DocumentError) as err:
        validate_document("CL", "RUT", f"{body}-{digit}")
    assert err.value.code == "invalid_check_digit"
    assert err.value.field == "document.number"
    assert "dígito verificador" in err.value.es


def test_rut_with_k_check_digit_in_either_case() -> None:
    # 10.000.013-K is a real-format RUT whose check digit is K.
    body = next(b for b in range(10_000_000, 10_001_000) if rut.calc_check_digit(str(b)) == "K")
    assert validate_document("CL", "RUT", f"{body}-k").number == f"{body}K"
    assert validate_document("CL", "RUT", f"{body}K").number == f"{body}K"


@hsettings(max_examples=300)
@given(st.sampled_from([("CL", "RUT"), ("CL", "DNI"), ("CO", "CC"), ("CO", "CE"), ("CO", "TI"), ("CO", "NIT"),
                        ("CO", "PA"), ("AR", "DNI"), ("AR", "CUIT"), ("AR", "CUIL"), ("EC", "CI"), ("EC", "RUC"),
                        ("PE", "DNI"), ("PE", "RUC"), ("PE", "CE"), ("BR", "PASSPORT"), ("XX", "RUT"),
                        ("CL", "NOPE")]),
       st.text(max_size=50))
def test_junk_never_raises_anything_but_document_error(pair: tuple[str, str], junk: str) -> None:
    try:
        doc = validate_document(pair[0], pair[1], junk)
    except DocumentError as exc:
        assert exc.code and exc.es and exc.en
    else:
        # Whatever passes is stored compact: ASCII letters and digits only.
        assert doc.number.isascii() and doc.number.isalnum()


def test_foreigner_dni_in_chile_has_no_check_digit_but_no_separators() -> None:
    assert validate_document("CL", "DNI", "ab123456").number == "AB123456"
    with pytest.raises(DocumentError) as err:
        validate_document("CL", "DNI", "AB-123.456")
    assert err.value.code == "invalid_format"
    assert "sin puntos" in err.value.es


@pytest.mark.parametrize("country,doc_type,number,compact", [
    ("CO", "CC", "1.020.304.050", "1020304050"),
    ("CO", "CC", "0079123456", "79123456"),  # barcode zero padding
    ("CO", "NIT", "900.373.115-3", "9003731153"),
    ("AR", "DNI", "20.123.456", "20123456"),
    ("AR", "CUIT", "20-12345678-6", "20123456786"),
    ("EC", "CI", "1714307103", "1714307103"),
    ("PE", "DNI", "10117410", "10117410"),
    ("PE", "RUC", "20512333797", "20512333797"),
    ("UY", "PASSPORT", "c1234567", "C1234567"),
])
def test_country_documents(country: str, doc_type: str, number: str, compact: str) -> None:
    assert validate_document(country, doc_type, number).number == compact


@pytest.mark.parametrize("country,doc_type,number,code", [
    ("CO", "NIT", "900.373.115-4", "invalid_check_digit"),
    ("EC", "CI", "1714307104", "invalid_check_digit"),
    ("AR", "CUIT", "20-12345678-7", "invalid_check_digit"),
    ("CO", "CC", "12a45", "invalid_format"),
    ("CL", "RUT", "1' OR '1'='1", "invalid_length"),
    ("CL", "RUT", "12.3A5.678-5", "invalid_format"),
])
def test_country_document_errors(country: str, doc_type: str, number: str, code: str) -> None:
    with pytest.raises(DocumentError) as err:
        validate_document(country, doc_type, number)
    assert err.value.code == code


@given(st.integers(min_value=1_000_000, max_value=9_999_999), st.integers(min_value=1, max_value=3))
def test_leading_zeros_of_a_rut_or_argentine_dni_are_padding(body: int, zeros: int) -> None:
    number = f"{body}{rut.calc_check_digit(str(body))}"
    assert validate_document("CL", "RUT", "0" * zeros + number).number == number
    assert validate_document("CL", "RUT", f"0{body:,}-{number[-1]}".replace(",", ".")).number == number
    assert validate_document("AR", "DNI", f"0{body}").number == str(body)


@pytest.mark.parametrize("country, doc_type, spellings, compact, display", [
    ("CL", "RUT", ["812.345-4", "0.812.345-4", "08123454", "0008123454"], "8123454", "812.345-4"),
    ("AR", "DNI", ["123456", "0123456", "00123456"], "123456", "123.456"),
])
def test_short_numbers_are_valid_in_every_padding(country: str, doc_type: str, spellings: list[str], compact: str,
                                                  display: str) -> None:
    for spelling in spellings:
        doc = validate_document(country, doc_type, spelling)
        assert (doc.number, doc.display) == (compact, display), spelling


def test_cuil_is_the_persons_cuit_and_never_a_company_prefix() -> None:
    from agent.customers.documents import identity_type

    assert validate_document("AR", "CUIL", "20-26756539-3").number == "20267565393"
    assert identity_type("AR", "CUIL") == identity_type("AR", "CUIT") == "CUIT"
    with pytest.raises(DocumentError) as err:
        validate_document("AR", "CUIL", "30-50001770-4")  # valid CUIT of a company
    assert err.value.code == "invalid_format" and "CUIL" in err.value.es
    assert validate_document("AR", "CUIT", "30-50001770-4").number == "30500017704"


def test_unknown_type_lists_the_allowed_ones() -> None:
    with pytest.raises(DocumentError) as err:
        validate_document("CO", "RUT", "123")
    assert err.value.field == "document.type"
    for t in document_types("CO"):
        assert t in err.value.es
