"""Phone numbers: one number per entry, normalized to E.164 for the station's country.

Seed 004's rule ("solo números, un número por campo") becomes a clear error instead of a
form that silently refuses; formatting characters people type (spaces, dashes, dots,
parentheses, a leading +) are accepted and removed.

>>> normalize_phone("+56 9 8765 4321", "mobile", "CL")
'+56987654321'
>>> normalize_phone("310 123 4567", "mobile", "CO")
'+573101234567'
>>> normalize_phone("98765432, 22334455", "mobile", "CL")
Traceback (most recent call last):
...
agent.customers.phones.PhoneError: one_number_per_entry
>>> normalize_phone("3100000000", "mobile", "CO")  # seed 003's filler for "no phone"
Traceback (most recent call last):
...
agent.customers.phones.PhoneError: placeholder_phone
"""
from __future__ import annotations

import re

import phonenumbers
from phonenumbers import PhoneNumberType

_ALLOWED = re.compile(r"^\+?[0-9 ()./\-]+$")
_SEVERAL = re.compile(r"[,;/|]|\s{2,}\d|\by\b|\bo\b", re.IGNORECASE)

_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
_FIXED_TYPES = {PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.VOIP}


class PhoneError(ValueError):
    def __init__(self, code: str, es: str, en: str) -> None:
        super().__init__(code)
        self.code = code
        self.es = es
        self.en = en


def normalize_phone(raw: str, kind: str, country: str) -> str:
    text = raw.strip()
    if not text:
        raise PhoneError("required", "Ingrese el número de teléfono.", "Enter the phone number.")
    if _SEVERAL.search(text):
        raise PhoneError(
            "one_number_per_entry",
            "Ingrese un solo número por teléfono; agregue los demás como teléfonos adicionales.",
            "Enter one number per phone; add the others as additional phones.",
        )
    if not _ALLOWED.match(text):
        raise PhoneError(
            "digits_only",
            "El teléfono solo puede tener números (se aceptan espacios, guiones y un + inicial).",
            "The phone may only contain digits (spaces, dashes and a leading + are accepted).",
        )
    try:
        parsed = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError("invalid_phone", "El número de teléfono no es válido.", "The phone number is not valid.") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneError(
            "invalid_phone",
            f"El número no es un teléfono válido para {country} (revise el largo y el código de área).",
            f"The number is not a valid phone number for {country} (check its length and area code).",
        )
    national = str(parsed.national_number)
    if len(national) >= 9 and set(national[3:]) == {"0"}:
        # An operator prefix plus zeros ("310 000 0000") is what staff typed when a form forced a
        # phone the customer did not have (seed 003); no real line is numbered that way. A customer may have none here, so a filler is refused, not stored.
        raise PhoneError(
            "placeholder_phone",
            "Ese número parece de relleno. Si el cliente no tiene teléfono, deje la lista de teléfonos vacía.",
            "That number looks like a filler. If the customer has no phone, leave the phone list empty.",
        )
    number_type = phonenumbers.number_type(parsed)
    if kind == "mobile" and number_type not in _MOBILE_TYPES:
        raise PhoneError("not_mobile", "El número no es de un celular; márquelo como fijo u otro.",
                         "The number is not a mobile number; mark it as fixed or other.")
    if kind == "fixed" and number_type not in _FIXED_TYPES:
        raise PhoneError("not_fixed", "El número no es de un teléfono fijo; márquelo como celular u otro.",
                         "The number is not a landline; mark it as mobile or other.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
