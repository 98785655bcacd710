"""Pydantic models for the loyalty program: earning rules, sale input, evaluation output.

Every model forbids unknown keys (a misspelt field from head office or a POS must fail loudly,
not be ignored). Money and quantities are ``Decimal``; floats never enter the arithmetic.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.clock import TimeZoneName

# Codes shared with POS software and head office: short, printable, no spaces.
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
# Largest quantity on one sale line: a truck tanker load is ~60,000 l; beyond that it is a typo.
MAX_QUANTITY = Decimal("100000")
# Largest line amount in the smallest currency in use (CLP has no decimals): 10^10.
MAX_AMOUNT = Decimal("10000000000")
# Largest multiplier head office can send; anything bigger is a data-entry error.
MAX_FACTOR = Decimal("100")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Targeted(_Strict):
    """A rule aimed at exactly one SKU or one article group."""

    rule_id: Code
    sku: Code | None = None
    article_group: Code | None = None

    @model_validator(mode="after")
    def _exactly_one_target(self) -> "_Targeted":
        if (self.sku is None) == (self.article_group is None):
            raise ValueError("a rule targets exactly one of sku or article_group")
        return self


class _Windowed(_Strict):
    # Inclusive local dates in the program's time zone; None = open-ended.
    valid_from: date | None = None
    valid_to: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "_Windowed":
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        return self

    def active_on(self, day: date) -> bool:
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


class EarnRule(_Targeted, _Windowed):
    """Base earning: ``points`` for every ``per`` units (per_unit) or currency (per_amount)."""

    kind: Literal["earn"] = "earn"
    basis: Literal["per_unit", "per_amount"]
    points: Decimal = Field(gt=0, le=Decimal("1000000"))
    per: Decimal = Field(default=Decimal(1), gt=0, le=MAX_AMOUNT)
    min_amount: Decimal = Field(default=Decimal(0), ge=0, le=MAX_AMOUNT)


class PromotionRule(_Targeted, _Windowed):
    """Date-window multiplier by product, e.g. double points for premium fuel in March."""

    kind: Literal["promotion"] = "promotion"
    factor: Decimal = Field(gt=0, le=MAX_FACTOR)


class FirstUseBonusRule(_Windowed):
    """Multiplier on the first sale of a card used within ``within_days`` of its issue."""

    kind: Literal["first_use_bonus"] = "first_use_bonus"
    rule_id: Code
    factor: Decimal = Field(gt=0, le=MAX_FACTOR)
    within_days: int = Field(default=30, ge=0, le=3660)


Rule = Annotated[Union[EarnRule, PromotionRule, FirstUseBonusRule], Field(discriminator="kind")]


class RuleProgram(_Strict):
    """A complete earning program as sent by head office (downlink) or read from a local file."""

    version: Code
    timezone: TimeZoneName = "America/Santiago"
    min_sale_amount: Decimal = Field(default=Decimal(0), ge=0, le=MAX_AMOUNT)
    rules: list[Rule] = Field(default_factory=list, max_length=200_000)

    @model_validator(mode="after")
    def _unique_ids(self) -> "RuleProgram":
        seen: set[str] = set()
        for rule in self.rules:
            if rule.rule_id in seen:
                raise ValueError(f"duplicate rule_id {rule.rule_id!r}")
            seen.add(rule.rule_id)
        return self


class SaleLine(_Strict):
    sku: Code
    article_group: Code | None = None
    quantity: Decimal = Field(gt=0, le=MAX_QUANTITY, max_digits=16, decimal_places=4)
    amount: Decimal = Field(ge=0, le=MAX_AMOUNT, max_digits=16, decimal_places=4)


class Receipt(_Strict):
    station: Code
    pos: Code
    number: Code


class AppliedRule(_Strict):
    """One step of the explanation: which rule did what to a line."""

    rule_id: str | None
    kind: Literal[
        "earn", "promotion", "first_use_bonus", "tier", "no_rule", "below_min_amount", "below_min_sale"
    ]
    effect: str  # machine-friendly: "+12.5", "x2", "x1.5", "0"
    note_es: str
    note_en: str


class LinePoints(_Strict):
    line_no: int
    sku: str
    article_group: str | None
    amount: Decimal
    raw_points: Decimal  # before rounding, for audit
    points: int
    applied: list[AppliedRule]


class SaleEvaluation(_Strict):
    program_version: str
    timezone: str
    local_date: date
    rounding: str
    lines: list[LinePoints]
    total_points: int
