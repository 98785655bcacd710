"""Create or update a customer from a capture's document (seed 003: an existing document is
updated - "ya existe, se actualizaran algunos datos" - instead of failing)."""
from __future__ import annotations

from typing import Any

from agent.customers.models import Customer, CustomerCreate, CustomerPatch
from agent.customers.service import CustomerExists, CustomerNotFound, CustomerService
from agent.idcard.errors import CaptureError
from agent.idcard.schema import IdDocument

def document_fields(doc: IdDocument) -> dict[str, Any]:
    """Customer fields the document provides (only those it actually holds)."""
    fields: dict[str, Any] = {
        # document_type is already the registry's vocabulary (CL: RUT), see IdDocument.
        "document": {"country": doc.country, "type": doc.document_type, "number": doc.document_number},
        "first_name": doc.first_name, "second_name": doc.second_name,
        "first_surname": doc.first_surname, "second_surname": doc.second_surname,
        "birth_date": doc.birth_date, "sex": doc.sex, "blood_type": doc.blood_type,
    }
    return {k: v for k, v in fields.items() if v is not None}


def upsert_customer(customers: CustomerService, doc: IdDocument | None, extra: dict[str, Any],
                    actor: str) -> tuple[Customer, bool]:
    """Returns (customer, created). ``extra`` holds what the attendant typed (phones, consents...);
    the document's own fields win over it for identity data."""
    if doc is None:
        raise CaptureError("no_document_read", "no se ha leido ningun documento en esta captura",
                           "no document was read in this capture", status=409)
    body = {**extra, **document_fields(doc)}
    document = body["document"]
    for _ in range(2):  # a concurrent create between find and create: retry as an update
        try:
            existing = customers.find_by_document(document["country"], document["type"], document["number"])
        except CustomerNotFound:
            try:
                return customers.create(CustomerCreate.model_validate(body), actor), True
            except CustomerExists:
                continue
        patch = CustomerPatch.model_validate({k: v for k, v in body.items() if k != "document"})
        return customers.update(existing.id, patch, actor), False
    raise CaptureError("enrollment_conflict", "conflicto al registrar el cliente, reintente",
                       "conflict while saving the customer, retry", status=409)
