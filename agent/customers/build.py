"""A customer request merged into the stored document: every field validated and normalized
(documents, phones, consents), the enrollment minimum checked, all problems reported at once.

Pure: no database. ``CustomerService`` stores what this returns.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.clock import iso
from agent.customers.config import EnrollmentSettings
from agent.customers.documents import DocumentError, is_tax_id, validate_document
from agent.customers.models import ConsentIn, CustomerFields, DocumentIn
from agent.customers.phones import PhoneError, normalize_phone
from agent.errors import ValidationProblems

_LABELS_ES = {
    "first_name": "primer nombre", "second_name": "segundo nombre", "first_surname": "primer apellido",
    "second_surname": "segundo apellido", "business_name": "razón social", "birth_date": "fecha de nacimiento",
    "sex": "sexo", "phones": "teléfono", "email": "correo electrónico", "address": "dirección",
    "tax_id": "identificación tributaria",
}


class CustomerBuilder:
    def __init__(self, enrollment: EnrollmentSettings, country: str) -> None:
        """``country``: the station's, for phone numbers given without a prefix."""
        self._enrollment = enrollment
        self._country = country

    def build(self, old: dict[str, Any] | None, body: CustomerFields, now: datetime) -> dict[str, Any]:
        """Merge the request into the stored document, validating everything; all errors at once."""
        problems = ValidationProblems()
        data: dict[str, Any] = dict(old or {})
        given = body.model_fields_set
        country = self._country
        stamp = iso(now)

        for name in given:
            value = getattr(body, name)
            if name == "document":
                if value is None:
                    problems.add("document", "required", "El documento es obligatorio.", "The document is required.")
                    continue
                doc = self._document(value, "document", problems)
                if doc:
                    data["document"] = doc
            elif name == "tax_id":
                data["tax_id"] = self._document(value, "tax_id", problems) if value is not None else None
            elif name == "phones":
                data["phones"] = self._phones(value or [], country, problems)
            elif name == "authorized_contacts":
                contacts = []
                for i, c in enumerate(value or []):
                    phone = None
                    if c.phone:
                        try:
                            phone = normalize_phone(c.phone, "other", country)
                        except PhoneError as exc:
                            problems.add(f"authorized_contacts[{i}].phone", exc.code, exc.es, exc.en)
                    contacts.append({"name": c.name, "phone": phone, "relationship": c.relationship})
                data["authorized_contacts"] = contacts
            elif name == "consents":
                data["consents"] = _merge_consents(data.get("consents") or {}, value, stamp) if value else data.get("consents", {})
            elif name == "credit_limit":
                data[name] = str(value) if value is not None else None
            elif name == "loyalty_id":
                data[name] = value.upper() if value else None  # printed codes: one spelling
            elif name == "birth_date":
                data[name] = value.isoformat() if value else None
            elif name == "kind" and value is None:
                problems.add("kind", "required", "Indique el tipo de cliente.", "Give the customer kind.")
            else:
                data[name] = value

        data.setdefault("kind", "natural")
        data.setdefault("foreigner", False)
        if data.get("foreigner") is None:
            data["foreigner"] = False
        problems.raise_if_any()
        # On an update only the fields it touches must meet the enrollment minimum: a field made
        # mandatory after this customer enrolled must not block changing their phone (seed 004).
        # A new document country or kind brings its own minimum: check everything then.
        partial = old is not None and not ({"document", "kind"} & set(given))
        self._check_required(data, problems, only=set(given) if partial else None)
        problems.raise_if_any()
        return data

    def _document(self, doc: DocumentIn, field: str, problems: ValidationProblems) -> dict[str, str] | None:
        try:
            parsed = validate_document(doc.country, doc.type, doc.number)
        except DocumentError as exc:
            problems.add(exc.field.replace("document", field, 1), exc.code, exc.es, exc.en)
            return None
        return {"country": parsed.country, "type": parsed.type, "number": parsed.number, "display": parsed.display}

    def _phones(self, phones: list[Any], country: str, problems: ValidationProblems) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        seen: set[str] = set()
        for i, p in enumerate(phones):
            try:
                number = normalize_phone(p.number, p.kind, country)
            except PhoneError as exc:
                problems.add(f"phones[{i}].number", exc.code, exc.es, exc.en)
                continue
            if number in seen:
                problems.add(f"phones[{i}].number", "duplicate_phone", "Ese teléfono ya está en la lista.",
                             "That phone is already in the list.")
                continue
            seen.add(number)
            out.append({"number": number, "kind": p.kind})
        return out

    def _check_required(self, data: dict[str, Any], problems: ValidationProblems, only: set[str] | None = None) -> None:
        doc = data["document"]
        if data["kind"] in ("juridica", "gobierno"):
            if not data.get("business_name"):
                problems.add("business_name", "required", "La razón social es obligatoria para empresas.",
                             "A business name is required for companies.")
            if data["kind"] == "juridica" and not is_tax_id(doc["country"], doc["type"]) and not data.get("tax_id"):
                problems.add("tax_id", "required",
                             "Las empresas necesitan un identificador tributario (RUT, NIT, RUC o CUIT).",
                             "Companies need a tax id (RUT, NIT, RUC or CUIT).")
            tax = data.get("tax_id")
            if tax and not is_tax_id(tax["country"], tax["type"]):
                problems.add("tax_id.type", "not_a_tax_id", "El identificador tributario debe ser RUT, NIT, RUC o CUIT.",
                             "The tax id must be a RUT, NIT, RUC or CUIT.")
            return
        required = self._enrollment.required_fields.get(doc["country"], [])
        for name in required:
            if only is not None and name not in only:
                continue
            if not data.get(name):
                label = _LABELS_ES.get(name, name)
                problems.add(name, "required", f"El campo {label} es obligatorio para inscribir al cliente.",
                             f"The field {name} is required to enroll the customer.")


def _merge_consents(current: dict[str, Any], given: Any, stamp: str) -> dict[str, Any]:
    """Record each consent given with its time and channel, even when its value is unchanged: seed
    000 has the attendant ratify the offers opt-in and LATAM Pass at each visit, and a ratification
    is itself a record (when and through which channel the customer confirmed it). Consents not
    given keep their record."""
    merged = dict(current)
    for name in ("offers", "data_processing", "biometrics"):
        if name not in given.model_fields_set:
            continue
        value = getattr(given, name)
        if value is None:
            merged.pop(name, None)
            continue
        consent = value if isinstance(value, ConsentIn) else ConsentIn(value=value)
        merged[name] = {"value": consent.value, "at": stamp, "channel": consent.channel}
    if "partner_programs" in given.model_fields_set:
        merged["partner_programs"] = [{"name": p.name, "member_id": p.member_id, "value": p.value, "at": stamp,
                                       "channel": p.channel} for p in given.partner_programs or []]
    return merged