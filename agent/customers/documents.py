"""Identity documents: which (country, type) pairs exist, how to validate them, their compact form.

Check-digit documents are validated with python-stdnum; documents without a check digit get
a strict character and length rule. The compact form is what we store and look up by, so
``12.345.678-5``, ``12345678-5`` and ``123456785`` all find the same Chilean customer.

>>> validate_document("CL", "RUT", "12.345.678-5").number
'123456785'
>>> validate_document("cl", "rut", "12345678-5").display
'12.345.678-5'
>>> validate_document("CL", "RUT", "12.345.678-9")
Traceback (most recent call last):
...
agent.customers.documents.DocumentError: invalid_check_digit
>>> validate_document("CL", "RUT", "01.234.567-4").number  # a leading zero is the same person
'12345674'
>>> mask("123456785")
'12****785'
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
from stdnum import exceptions as stdnum_errors
from stdnum.ar import cuit as ar_cuit
from stdnum.ar import dni as ar_dni
from stdnum.cl import rut as cl_rut
from stdnum.co import nit as co_nit
from stdnum.ec import ci as ec_ci
from stdnum.ec import ruc as ec_ruc
from stdnum.pe import cui as pe_cui
from stdnum.pe import ruc as pe_ruc

_ALNUM = re.compile(r"^[A-Z0-9]+$")
_DIGITS = re.compile(r"^[0-9]+$")  # ASCII only: str.isdigit() accepts '²'
_SEPARATORS = re.compile(r"[\s.\-]")


class DocumentError(ValueError):
    """A document number that cannot be accepted; ``code`` is stable, messages are for people."""

    def __init__(self, code: str, es: str, en: str, field: str = "document.number") -> None:
        super().__init__(code)
        self.code = code
        self.es = es
        self.en = en
        self.field = field


@dataclass(frozen=True)
class Document:
    country: str
    type: str
    number: str  # compact
    display: str

    @property
    def masked(self) -> str:
        return mask(self.number)


def mask(number: str) -> str:
    """Mask a document number for logs: keep 2 leading and 3 trailing characters.

    >>> mask("1234"), mask("900373115")
    ('****', '90****115')
    """
    if len(number) <= 6:
        return "****"
    return f"{number[:2]}****{number[-3:]}"


def _stdnum(module: object, label: str, *, pad_to: int | None = None) -> Callable[[str], tuple[str, str]]:
    """A python-stdnum module's validation.

    ``pad_to`` is for variable-length numbers where leading zeros are only padding (a RUT or an
    Argentine DNI typed as ``01.234.567-4`` / ``05123456``): zeros add nothing to their check
    digit, so every spelling is stored without them. python-stdnum wants a minimum length
    (8 for a RUT, 7 for a DNI), so a short number is zero-filled to it for the check only.
    """

    def check(raw: str) -> tuple[str, str]:
        try:
            if pad_to is not None:
                digits = module.compact(raw).lstrip("0")  # type: ignore[attr-defined]
                raw = digits.zfill(pad_to) if digits else raw
            number = module.validate(raw)  # type: ignore[attr-defined]
        except stdnum_errors.InvalidChecksum as exc:
            raise DocumentError(
                "invalid_check_digit",
                f"El dígito verificador del {label} no es válido.",
                f"The {label} check digit is wrong.",
            ) from exc
        except stdnum_errors.InvalidLength as exc:
            raise DocumentError(
                "invalid_length",
                f"El {label} no tiene el largo correcto.",
                f"The {label} has the wrong length.",
            ) from exc
        except stdnum_errors.ValidationError as exc:
            raise DocumentError(
                "invalid_format",
                f"El {label} tiene caracteres o formato no válidos.",
                f"The {label} has invalid characters or format.",
            ) from exc
        if pad_to is not None:
            number = number.lstrip("0") or number
        formatter = getattr(module, "format", None)
        # stdnum groups from the right and leaves a leading "." on a short number (".812.345-4").
        return number, formatter(number).lstrip(".") if formatter else number

    return check


def _plain(label: str, *, digits_only: bool, min_len: int, max_len: int, separators_ok: bool,
           strip_zeros: bool = False) -> Callable[[str], tuple[str, str]]:
    """Documents without a check digit: a character class and a length range."""

    def check(raw: str) -> tuple[str, str]:
        text = raw.strip().upper()
        if separators_ok:
            text = _SEPARATORS.sub("", text)
        elif _SEPARATORS.search(text):
            raise DocumentError(
                "invalid_format",
                f"Ingrese el {label} sin puntos, guiones ni espacios.",
                f"Enter the {label} without dots, dashes or spaces.",
            )
        pattern = _DIGITS if digits_only else _ALNUM
        if not pattern.match(text):
            kind_es = "solo números" if digits_only else "solo letras y números"
            kind_en = "digits only" if digits_only else "letters and digits only"
            raise DocumentError(
                "invalid_format",
                f"El {label} debe tener {kind_es}.",
                f"The {label} must contain {kind_en}.",
            )
        if strip_zeros:
            text = text.lstrip("0") or "0"
        if not min_len <= len(text) <= max_len:
            raise DocumentError(
                "invalid_length",
                f"El {label} debe tener entre {min_len} y {max_len} caracteres.",
                f"The {label} must have between {min_len} and {max_len} characters.",
            )
        return text, text

    return check


def _pe_dni(raw: str) -> tuple[str, str]:
    # The DNI number is the 8-digit CUI; cards print a verification character after it,
    # which we check when given and do not store (people rarely know it).
    number, _ = _stdnum(pe_cui, "DNI")(raw)
    return number[:8], number[:8]


_AR_CUIT = _stdnum(ar_cuit, "CUIL")
# CUIL is issued to people only; 30/33/34 are company CUIT prefixes (AFIP).
_CUIL_PREFIXES = ("20", "23", "24", "27")


def _ar_cuil(raw: str) -> tuple[str, str]:
    number, display = _AR_CUIT(raw)
    if not number.startswith(_CUIL_PREFIXES):
        raise DocumentError("invalid_format", "Un CUIL comienza con 20, 23, 24 o 27 (30, 33 y 34 son CUIT de empresas).",
                            "A CUIL starts with 20, 23, 24 or 27 (30, 33 and 34 are company CUITs).")
    return number, display


# Document types that are one number space: a person's CUIL is their CUIT. The store keys
# them by one type, so either finds the customer and both cannot be enrolled twice.
_SAME_IDENTITY = {("AR", "CUIL"): "CUIT"}


def identity_type(country: str, doc_type: str) -> str:
    """The type a document is stored and looked up under.

    >>> identity_type("AR", "CUIL"), identity_type("AR", "DNI")
    ('CUIT', 'DNI')
    """
    return _SAME_IDENTITY.get((country, doc_type), doc_type)


_PASSPORT = _plain("pasaporte", digits_only=False, min_len=5, max_len=20, separators_ok=False)

# (country, type) -> (validator, is company tax id, Spanish label)
_VALIDATORS: dict[tuple[str, str], tuple[Callable[[str], tuple[str, str]], bool]] = {
    ("CL", "RUT"): (_stdnum(cl_rut, "RUT", pad_to=8), True),
    ("CL", "DNI"): (_plain("DNI", digits_only=False, min_len=4, max_len=20, separators_ok=False), False),
    ("CO", "CC"): (_plain("número de cédula", digits_only=True, min_len=3, max_len=10, separators_ok=True, strip_zeros=True), False),
    ("CO", "CE"): (_plain("número de cédula de extranjería", digits_only=False, min_len=3, max_len=12, separators_ok=True), False),
    ("CO", "TI"): (_plain("número de tarjeta de identidad", digits_only=True, min_len=10, max_len=11, separators_ok=True), False),
    ("CO", "NIT"): (_stdnum(co_nit, "NIT"), True),
    ("CO", "PA"): (_PASSPORT, False),
    ("AR", "DNI"): (_stdnum(ar_dni, "DNI", pad_to=7), False),
    ("AR", "CUIT"): (_stdnum(ar_cuit, "CUIT"), True),
    ("AR", "CUIL"): (_ar_cuil, False),
    ("EC", "CI"): (_stdnum(ec_ci, "número de cédula"), False),
    ("EC", "RUC"): (_stdnum(ec_ruc, "RUC"), True),
    ("PE", "DNI"): (_pe_dni, False),
    ("PE", "RUC"): (_stdnum(pe_ruc, "RUC"), True),
    ("PE", "CE"): (_plain("carné de extranjería", digits_only=False, min_len=8, max_len=12, separators_ok=True), False),
}


def document_types(country: str) -> list[str]:
    return sorted({t for c, t in _VALIDATORS if c == country} | {"PASSPORT"})


def is_tax_id(country: str, doc_type: str) -> bool:
    entry = _VALIDATORS.get((country.upper(), doc_type.upper()))
    return bool(entry and entry[1])


def validate_document(country: str, doc_type: str, number: str) -> Document:
    """Validate and compact a document, or raise ``DocumentError`` naming the field at fault."""
    country = (country or "").strip().upper()
    doc_type = (doc_type or "").strip().upper()
    if country not in phonenumbers.SUPPORTED_REGIONS:
        raise DocumentError(
            "unknown_country",
            "El país del documento no es un código ISO 3166 válido (p. ej. CL, CO, AR, EC, PE).",
            "The document country is not a valid ISO 3166 code (e.g. CL, CO, AR, EC, PE).",
            field="document.country",
        )
    if not isinstance(number, str) or not number.strip():
        raise DocumentError("required", "Ingrese el número de documento.", "Enter the document number.")
    if len(number) > 40:
        raise DocumentError("invalid_length", "El número de documento es demasiado largo.", "The document number is too long.")
    if doc_type == "PASSPORT":
        validator = _PASSPORT
    else:
        entry = _VALIDATORS.get((country, doc_type))
        if entry is None:
            allowed = ", ".join(document_types(country))
            raise DocumentError(
                "unknown_document_type",
                f"Tipo de documento no válido para {country}. Use uno de: {allowed}.",
                f"Document type not valid for {country}. Use one of: {allowed}.",
                field="document.type",
            )
        validator = entry[0]
    compact, display = validator(number)
    return Document(country=country, type=doc_type, number=compact, display=display)
