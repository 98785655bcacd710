"""The one output schema every document parser returns.

Field names are a contract with the POS (CLI JSON and HTTP API): do not rename them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class IdDocument:
    """A person's identity data read from a document barcode or MRZ.

    ``document_type`` is the customer registry's type for that country (CO ``CC``, AR ``DNI``,
    CL ``RUT``, PE ``DNI``, EC ``CI``), so the POS can look the customer up with it as is;
    ``card_type`` is the physical card that was read (``CEDULA_DIGITAL``, ``CEDULA_EXT``...) and
    ``card_serial`` the card's own number where it differs from the person's (a new card, same person).
    ``given_names``/``surnames`` are the full strings; ``first_*``/``second_*`` their split.
    Dates are ISO ``YYYY-MM-DD``; absent data is ``None``; ``warnings`` holds stable
    snake_case codes (never personal data).

    >>> doc = IdDocument(country="CO", document_type="CC", document_number="1047425328",
    ...                  given_names="ANA", surnames="PEREZ", first_name="ANA", second_name=None,
    ...                  first_surname="PEREZ", second_surname=None, sex="F",
    ...                  birth_date="1990-08-22", blood_type="O+", expiry=None)
    >>> sorted(doc.to_dict())[:3]
    ['birth_date', 'blood_type', 'card_serial']
    >>> doc.masked_number()
    '10******28'
    """

    country: str
    document_type: str
    document_number: str
    given_names: str | None
    surnames: str | None
    first_name: str | None
    second_name: str | None
    first_surname: str | None
    second_surname: str | None
    sex: str | None
    birth_date: str | None
    blood_type: str | None
    expiry: str | None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    card_type: str | None = None
    card_serial: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["warnings"] = list(self.warnings)
        return data

    def masked_number(self) -> str:
        """Document number safe for logs: first two and last two characters only."""
        return mask_number(self.document_number)


def mask_number(number: str) -> str:
    """Mask a document number for logs.

    >>> mask_number("1047425328")
    '10******28'
    >>> mask_number("123")
    '***'
    """
    if len(number) <= 4:
        return "*" * len(number)
    return number[:2] + "*" * (len(number) - 4) + number[-2:]
