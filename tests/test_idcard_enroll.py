"""Create-or-update a customer from a read document, on the real customer store (SQLite)."""
from __future__ import annotations

import pytest

from agent.idcard.enroll import upsert_customer
from agent.idcard.errors import CaptureError
from agent.idcard.parsers import parse_any
from agent.idcard.samples import SyntheticPerson, cl_qr_url, co_cedula_payload

PERSON = SyntheticPerson("CO", "1047425328", "SILFREDO", None, "BARRIOS", "NOEL", "M", "1990-08-22", "O+")


def test_new_document_creates_then_same_document_updates(services) -> None:
    doc = parse_any(co_cedula_payload(PERSON), "PDF417")
    extra = {"phones": [{"number": "+57 310 2133017", "kind": "mobile"}]}
    customer, created = upsert_customer(services.customers, doc, extra, "pos-1")
    assert created and customer.first_surname == "BARRIOS" and customer.blood_type == "O+"
    again, created_again = upsert_customer(services.customers, doc, {"phones": [{"number": "+57 315 7654321"}]}, "pos-1")
    assert not created_again and again.id == customer.id
    assert "3157654321" in again.model_dump_json() and again.first_surname == "BARRIOS"


def test_chilean_run_is_registered_as_rut(services) -> None:
    person = SyntheticPerson("CL", "15988779-0", "ANA", None, "ROJAS", None, "F", "1984-07-09", None)
    doc = parse_any(cl_qr_url(person), "QRCode")
    customer, created = upsert_customer(services.customers, doc, {"first_name": "Ana", "first_surname": "Rojas"},
                                        "pos-1")
    assert created and customer.document.type == "RUT"


def test_no_document_is_a_conflict(services) -> None:
    with pytest.raises(CaptureError) as err:
        upsert_customer(services.customers, None, {}, "pos-1")
    assert err.value.status == 409
