"""Settings of the customer registry (mounted as ``Settings.enrollment``)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.settings_loader import bilingual


_DEFAULT_REQUIRED: dict[str, list[str]] = {
    # Minimum fields to enroll a natural person, per country (seed 000: "campos obligatorios
    # mínimos"). Companies always need business_name; documents are always required.
    "CL": ["first_name", "first_surname"],
    "CO": ["first_name", "first_surname"],
    "AR": ["first_name", "first_surname"],
    "EC": ["first_name", "first_surname"],
    "PE": ["first_name", "first_surname"],
}


class EnrollmentSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required_fields: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in _DEFAULT_REQUIRED.items()},
        description="Per document country: fields a natural person must have to be enrolled.",
    )
    photos_required: bool = Field(
        False, description="Enrollment from an ID-card capture needs the front and back photos first (seed 003).")

    @field_validator("required_fields")
    @classmethod
    def _known_countries_and_fields(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        # A typo here would make every enrollment of that country fail with a field the POS
        # cannot even send: refuse it at start-up (and in check-config) instead.
        import phonenumbers

        from agent.customers.models import CustomerFields

        allowed = sorted(set(CustomerFields.model_fields) - {"kind", "foreigner"})
        checked: dict[str, list[str]] = {}
        for country, names in value.items():
            code = country.strip().upper()
            if code not in phonenumbers.SUPPORTED_REGIONS:
                raise bilingual(f"{country!r} no es un código de país ISO 3166 alfa-2", f"{country!r} is not an ISO 3166 alpha-2 country code")
            if code in checked:
                raise bilingual(f"{code} aparece dos veces (los códigos de país no distinguen mayúsculas)", f"{code} is listed twice (country codes are not case-sensitive)")
            unknown = [n for n in names if n not in allowed]
            if unknown:
                raise bilingual(f"campo(s) desconocido(s) {unknown} para {code}; permitidos: {', '.join(allowed)}",
                                f"unknown field(s) {unknown} for {code}; allowed: {', '.join(allowed)}")
            checked[code] = list(names)
        return checked
