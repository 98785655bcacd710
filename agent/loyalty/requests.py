"""Request bodies of the loyalty operations (shared by the service and the HTTP router)."""
from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .models import MAX_AMOUNT, MAX_QUANTITY, Code, Receipt, SaleLine

Reason = Field(min_length=1, max_length=200)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SaleRequest(_Strict):
    session_id: Code
    receipt: Receipt
    lines: list[SaleLine] = Field(min_length=1, max_length=200)


class SimulateRequest(_Strict):
    session_id: Code | None = None  # without it: no tier, no first-use bonus
    lines: list[SaleLine] = Field(min_length=1, max_length=200)


class ReturnLine(_Strict):
    line_no: int = Field(ge=1, le=1000)
    quantity: Decimal | None = Field(default=None, gt=0, le=MAX_QUANTITY, decimal_places=4)
    amount: Decimal | None = Field(default=None, gt=0, le=MAX_AMOUNT, decimal_places=4)

    @model_validator(mode="after")
    def _one_measure(self) -> "ReturnLine":
        if (self.quantity is None) == (self.amount is None):
            raise ValueError("give exactly one of quantity or amount for a returned line")
        return self


class ReturnRequest(_Strict):
    """Per returned line, or one amount spread over the sale in proportion to line amounts."""

    original: Receipt
    document: Receipt  # the credit note / return document, unique like any receipt
    reason: str = Reason
    lines: list[ReturnLine] | None = Field(default=None, min_length=1, max_length=200)
    amount: Decimal | None = Field(default=None, gt=0, le=MAX_AMOUNT, decimal_places=4)

    @model_validator(mode="after")
    def _one_mode(self) -> "ReturnRequest":
        if (self.lines is None) == (self.amount is None):
            raise ValueError("give either lines or amount")
        if self.lines is not None and len({line.line_no for line in self.lines}) != len(self.lines):
            raise ValueError("a line appears twice in the return")
        return self


class VoidRequest(_Strict):
    original: Receipt
    document: Receipt
    reason: str = Reason


class RedeemRequest(_Strict):
    session_id: Code
    reward_id: Code
    quantity: int = Field(default=1, ge=1, le=100)


class StockMovementRequest(_Strict):
    reward_id: Code
    kind: Literal["receipt", "consignment_transfer_in"]
    quantity: int = Field(gt=0, le=100_000)
    document: Code


class IssueCardRequest(_Strict):
    card_number: Code
    account_id: Code | None = None
    role: Literal["primary", "additional", "vehicle"] = "primary"
    tier_id: Code | None = None
    is_fleet: bool = False
    customer_id: Code | None = None
    partner_member_id: str | None = Field(default=None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")


class BlockCardRequest(_Strict):
    reason: str = Reason


class ReplaceCardRequest(_Strict):
    new_card: Code
    reason: str = Reason
