from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from agent.customers.phones import PhoneError, normalize_phone


@pytest.mark.parametrize("raw,kind,country,e164", [
    ("+56 9 8765 4321", "mobile", "CL", "+56987654321"),
    ("9 8765 4321", "mobile", "CL", "+56987654321"),
    ("(2) 2345 6789", "fixed", "CL", "+56223456789"),
    ("310-123-4567", "mobile", "CO", "+573101234567"),
    ("601 234 5678", "fixed", "CO", "+576012345678"),
])
def test_normalizes_to_e164(raw: str, kind: str, country: str, e164: str) -> None:
    assert normalize_phone(raw, kind, country) == e164


@pytest.mark.parametrize("raw,code", [
    ("310 123 4567, 311 765 4321", "one_number_per_entry"),
    ("310 123 4567 / 311 765 4321", "one_number_per_entry"),
    ("31O1234567", "digits_only"),  # letter O typed for zero
    ("ext 123", "digits_only"),
    ("123", "invalid_phone"),
])
def test_seed_004_digits_only_rules_give_clear_errors(raw: str, code: str) -> None:
    with pytest.raises(PhoneError) as err:
        normalize_phone(raw, "mobile", "CO")
    assert err.value.code == code
    assert err.value.es and err.value.en


def test_a_landline_marked_as_mobile_is_refused() -> None:
    with pytest.raises(PhoneError) as err:
        normalize_phone("601 234 5678", "mobile", "CO")
    assert err.value.code == "not_mobile"


@given(st.text(max_size=40), st.sampled_from(["mobile", "fixed", "other"]), st.sampled_from(["CL", "CO", "AR", "EC", "PE"]))
def test_junk_only_raises_phone_error(raw: str, kind: str, country: str) -> None:
    try:
        out = normalize_phone(raw, kind, country)
    except PhoneError:
        return
    assert out.startswith("+") and out[1:].isdigit()
