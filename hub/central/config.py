"""Settings of the central administration (mounted as ``Settings.central`` of the hub)."""
from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.settings_loader import bilingual


class ChainSettings(BaseModel):
    """The chain as a whole (mounted as ``Settings.chain`` of the hub)."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field("America/Bogota", description="IANA time zone of the chain's calendar: month boundaries "
                                                        "of the monthly close (expiry, settlement, fleet), statistics "
                                                        "and the scheduled close use it, not UTC.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise bilingual(f"zona horaria desconocida {value!r} (use un nombre IANA, p. ej. America/Bogota)",
                            f"unknown time zone {value!r} (use an IANA name, e.g. America/Bogota)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class CentralSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signing_key_file: Path | None = Field(
        None, description="Head office Ed25519 private key (PEM, mode 0600) that signs every configuration "
                          "document and PIN bundle (`loyalty-hub keys generate`).")
    pin_signing_key_file: Path | None = Field(
        None, description="Optional separate Ed25519 key (PEM, mode 0600) for PIN bundles; the stations' "
                          "[cards.pins] bundle_public_key is then its public key. Default: signing_key_file.")
    pepper_dir: Path | None = Field(
        None, description="Folder of the stations' PIN peppers (one <station>.key each, mode 0600).")
    pin_min_length: int = Field(4, ge=4, le=8, description="Shortest attendant PIN accepted (digits; at most 8).")
    pin_bundle_days: int = Field(35, ge=1, le=366, description="A PIN bundle expires this many days after issue.")
    expiry_months: int = Field(24, ge=1, le=120, description="Points older than this expire at the monthly close.")
    order_weekday: int = Field(0, ge=0, le=6, description="Day of the weekly consolidated reward order "
                                                           "(0 = Monday ... 6 = Sunday).")
    immobilized_days: int = Field(90, ge=1, description="Station stock with no movement for this long is listed "
                                                        "as immobilized.")
    enrollment_request_days: int = Field(90, ge=1, le=366, description="Enrollment requests from the website are "
                                         "deleted this many days after they were made, at head office and at the "
                                         "stations (the customer's data are kept no longer).")
    close_day: int = Field(1, ge=1, le=28, description="Day of the month on which the leader closes the previous "
                                                       "month by itself (chain time zone).")
    close_hour: int = Field(3, ge=0, le=23, description="Hour (chain time zone) of that automatic close.")
    close_business_day: bool = Field(True, description="Move the automatic close from a Saturday or Sunday to the "
                                                       "next Monday (holidays are not known).")
    actor: str | None = Field(None, description="Who runs the CLI, for the audit trail (default: the OS user).")
