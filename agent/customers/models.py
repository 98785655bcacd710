"""Request and response models of the customer API (field names are a published contract)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, EmailStr, Field, PlainSerializer, StrictBool,
                      StringConstraints, field_validator)
from pydantic_core import PydanticCustomError

from agent.clock import iso

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60, pattern=r"^[^\x00-\x1f\x7f<>]+$")]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
# One timestamp spelling everywhere (API, stored JSON, events): UTC, milliseconds, Z.
Timestamp = Annotated[datetime, PlainSerializer(iso, return_type=str, when_used="json")]
Kind = Literal["natural", "juridica", "gobierno"]
Sex = Literal["F", "M", "X"]
BloodType = Literal["O+", "O-", "A+", "A-", "B+", "B-", "AB+", "AB-"]
PhoneKind = Literal["mobile", "fixed", "other"]
Channel = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")]
# Consents and flags are JSON true/false only: "yes", "no", 1 or "0" is a client bug, and a
# consent recorded from a guess is not a consent.
Flag = StrictBool


def _calendar_day(value: object) -> object:
    """Only ``YYYY-MM-DD`` for a day: ``1990-08-22T00:00:00`` or a Unix time is a client bug."""
    if isinstance(value, str) and not (len(value) == 10 and value[4] == "-" and value[7] == "-"):
        raise PydanticCustomError("date_parsing", "use YYYY-MM-DD")
    if isinstance(value, (int, float)):
        raise PydanticCustomError("date_type", "use YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_calendar_day)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DocumentIn(_In):
    country: Annotated[str, StringConstraints(min_length=2, max_length=2)]
    type: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    number: Annotated[str, StringConstraints(min_length=1, max_length=40)]


class PhoneIn(_In):
    number: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    kind: PhoneKind = "mobile"


class ContactIn(_In):
    name: Name
    phone: Annotated[str, StringConstraints(min_length=1, max_length=32)] | None = None
    relationship: ShortText | None = None


class ConsentIn(_In):
    value: Flag
    channel: Channel = "pos"


class PartnerProgramIn(_In):
    name: ShortText
    member_id: Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$")] | None = None
    value: Flag = True
    channel: Channel = "pos"


class ConsentsIn(_In):
    """Each consent is a boolean (recorded with the request's time and the channel ``pos``) or an object."""

    offers: Flag | ConsentIn | None = None
    partner_programs: list[PartnerProgramIn] | None = Field(None, max_length=10)
    data_processing: Flag | ConsentIn | None = None
    biometrics: Flag | ConsentIn | None = None


class CustomerFields(_In):
    """Fields shared by create and update (all optional here; create adds its own rules)."""

    kind: Kind | None = None
    first_name: Name | None = None
    second_name: Name | None = None
    first_surname: Name | None = None
    second_surname: Name | None = None
    business_name: ShortText | None = None
    tax_id: DocumentIn | None = None
    birth_date: Day | None = None
    sex: Sex | None = None
    blood_type: BloodType | None = None
    phones: list[PhoneIn] | None = Field(None, max_length=20)
    email: EmailStr | None = None
    address: ShortText | None = None
    city: Name | None = None
    authorized_contacts: list[ContactIn] | None = Field(None, max_length=10)
    loyalty_id: Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")] | None = None
    credit_limit: Annotated[Decimal, Field(ge=0, le=Decimal("1e12"), decimal_places=2)] | None = None
    foreigner: Flag | None = None
    consents: ConsentsIn | None = None

    @field_validator("birth_date")
    @classmethod
    def _plausible_birth(cls, value: date | None) -> date | None:
        if value is not None and not (date(1900, 1, 1) <= value <= date.today()):
            raise ValueError("birth date out of range")
        return value


class CustomerCreate(CustomerFields):
    document: DocumentIn
    kind: Kind = "natural"


class CustomerPatch(CustomerFields):
    document: DocumentIn | None = None


# ---- responses -------------------------------------------------------------------------

class DocumentOut(BaseModel):
    country: str
    type: str
    number: str = Field(description="Compact form (no dots or dashes).")
    display: str = Field(description="Conventional printed form, e.g. 12.345.678-5.")


class PhoneOut(BaseModel):
    number: str = Field(description="E.164")
    kind: PhoneKind


class ConsentOut(BaseModel):
    value: bool
    at: Timestamp
    channel: str


class PartnerProgramOut(ConsentOut):
    name: str
    member_id: str | None = None


class ConsentsOut(BaseModel):
    offers: ConsentOut | None = None
    partner_programs: list[PartnerProgramOut] = []
    data_processing: ConsentOut | None = None
    biometrics: ConsentOut | None = None


class ContactOut(BaseModel):
    name: str
    phone: str | None = None
    relationship: str | None = None


class Customer(BaseModel):
    id: str
    document: DocumentOut
    kind: Kind
    first_name: str | None = None
    second_name: str | None = None
    first_surname: str | None = None
    second_surname: str | None = None
    business_name: str | None = None
    tax_id: DocumentOut | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    blood_type: BloodType | None = None
    phones: list[PhoneOut] = []
    email: str | None = None
    address: str | None = None
    city: str | None = None
    authorized_contacts: list[ContactOut] = []
    loyalty_id: str | None = None
    credit_limit: Decimal | None = None
    foreigner: bool = False
    consents: ConsentsOut = Field(default_factory=ConsentsOut)
    version: int
    created_at: Timestamp
    updated_at: Timestamp


class CustomerSummary(BaseModel):
    id: str
    document: DocumentOut
    kind: Kind
    name: str
    loyalty_id: str | None = None


class SearchResult(BaseModel):
    items: list[CustomerSummary]


class Change(BaseModel):
    field: str
    old: object | None = None
    new: object | None = None
    at: Timestamp
    actor: str


class ChangeList(BaseModel):
    customer_id: str
    from_: datetime = Field(alias="from")
    to: datetime
    items: list[Change]

    model_config = ConfigDict(populate_by_name=True)
