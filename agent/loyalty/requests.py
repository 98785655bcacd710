"""Request bodies of the loyalty operations (shared by the service and the HTTP router)."""
from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .models import MAX_AMOUNT, MAX_QUANTITY, Code, Receipt, SaleLine

Reason = Field(min_length=1, max_length=200)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomerDocument(_Strict):
    """The customer's identity document as typed at the POS (any spelling: 12.345.678-5 or 123456785)."""

    document_country: str = Field(min_length=2, max_length=2, examples=["CL"])
    document_type: str = Field(min_length=1, max_length=16, examples=["RUT"])
    document_number: str = Field(min_length=1, max_length=40, examples=["12.345.678-5"])


class _Identified(_Strict):
    """Who earns: a swiped card (``session_id``), the customer's document, or their id.

    Seeds 000 and 003 ask for the document at every sale instead of a card. ``customer`` and
    ``customer_id`` are alternatives to each other; either may come with a swipe, and then
    the card must belong to that customer (409 otherwise).
    """

    session_id: Code | None = None
    customer: CustomerDocument | None = None
    customer_id: Code | None = None

    @model_validator(mode="after")
    def _one_customer(self) -> "_Identified":
        if self.customer is not None and self.customer_id is not None:
            raise ValueError("give customer (document) or customer_id, not both")
        return self

    @property
    def identifies_customer(self) -> bool:
        return self.customer is not None or self.customer_id is not None


class SaleRequest(_Identified):
    receipt: Receipt
    lines: list[SaleLine] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _someone_earns(self) -> "SaleRequest":
        if self.session_id is None and not self.identifies_customer:
            raise ValueError("give session_id (a swiped card), customer (a document) or customer_id")
        return self


class SimulateRequest(_Identified):
    # Without any of session_id / customer / customer_id: no tier, no first-use bonus.
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


class _CustomerCheck(_Strict):
    """Optional on returns and voids: the customer the POS believes made the sale (409 if not)."""

    customer: CustomerDocument | None = None
    customer_id: Code | None = None

    @model_validator(mode="after")
    def _one_customer(self) -> "_CustomerCheck":
        if self.customer is not None and self.customer_id is not None:
            raise ValueError("give customer (document) or customer_id, not both")
        return self


class ReturnRequest(_CustomerCheck):
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


class VoidRequest(_CustomerCheck):
    original: Receipt
    document: Receipt
    reason: str = Reason


class RedeemRequest(_Strict):
    session_id: Code
    reward_id: Code
    quantity: int = Field(default=1, ge=1, le=100)


class StockMovementRequest(_Strict):
    """Stock in (a receipt, a consignment transfer in, a shipment's receipt voucher) or out (a
    transfer to another station or back to the warehouse)."""

    reward_id: Code
    kind: Literal["receipt", "consignment_transfer_in", "shipment_receipt", "transfer_out"]
    quantity: int = Field(gt=0, le=100_000)
    document: Code
    note: str | None = Field(default=None, min_length=1, max_length=200)


class StockCountRequest(_Strict):
    """A physical count of one reward: the stock becomes what was counted; the difference is recorded."""

    reward_id: Code
    counted: int = Field(ge=0, le=100_000)
    document: Code  # the count sheet
    note: str | None = Field(default=None, min_length=1, max_length=200)


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
