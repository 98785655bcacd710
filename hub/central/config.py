"""Settings of the central administration (mounted as ``Settings.central`` of the hub)."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class CentralSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signing_key_file: Path | None = Field(
        None, description="Head office Ed25519 private key (PEM, mode 0600) that signs every configuration "
                          "document and PIN bundle (`loyalty-hub keys generate`).")
    pepper_dir: Path | None = Field(
        None, description="Folder of the stations' PIN peppers (one <station>.key each, mode 0600).")
    pin_min_length: int = Field(4, ge=4, le=8, description="Shortest attendant PIN accepted (digits; at most 8).")
    pin_bundle_days: int = Field(35, ge=1, le=366, description="A PIN bundle expires this many days after issue.")
    expiry_months: int = Field(24, ge=1, le=120, description="Points older than this expire at the monthly close.")
    order_weekday: int = Field(0, ge=0, le=6, description="Day of the weekly consolidated reward order "
                                                           "(0 = Monday ... 6 = Sunday).")
    immobilized_days: int = Field(90, ge=1, description="Station stock with no movement for this long is listed "
                                                        "as immobilized.")
    actor: str | None = Field(None, description="Who runs the CLI, for the audit trail (default: the OS user).")
