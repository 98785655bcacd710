"""Loyalty settings; mount as ``Settings.loyalty: LoyaltySettings``."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class PartnerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Emit partner-accrual events for opted-in accounts.")
    program: str = Field("LATAM_PASS", min_length=1, max_length=32)
    miles_per_point: Decimal = Field(Decimal("1"), gt=0, le=1000, description="Rounded down per sale.")


class LoyaltySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True, description="Run the points program at this station; when false the loyalty routes answer 503 "
                          "`loyalty_not_configured` and head office's loyalty configuration is not accepted."
    )
    rules_file: Path | None = Field(
        None, description="Earning program JSON used until head office sends one over the downlink."
    )
    partner: PartnerSettings = Field(default_factory=PartnerSettings)
