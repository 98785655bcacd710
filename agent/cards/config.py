"""Settings for card readers, swipe sessions and attendant PINs (mounted as ``Settings.cards``)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.cards.lines import CardLineSettings
from agent.secret_fields import secret_field
from agent.settings_loader import bilingual


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PcscSettings(_Section):
    enabled: bool = Field(False, description="Watch PC/SC readers (needs pcscd).")
    reader_pattern: str = Field(r"ACR122|PICC|Contactless", description="Regex on the PC/SC reader name.")
    ntag_pages: tuple[int, int] | None = Field(None, description="NTAG/Ultralight (first page, count) to read.")
    classic_blocks: list[int] = Field(default_factory=list, description="MIFARE Classic blocks to read.")
    # Key material: whoever has the keys can read (and with key B often write) the cards.
    classic_keys: list[str] = secret_field(default_factory=lambda: ["FFFFFFFFFFFF"],
                                           description="Hex keys, tried in order; prefix 'B:' for key B.")

    @field_validator("classic_keys")
    @classmethod
    def _hex_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            raw = key.removeprefix("B:").removeprefix("A:")
            if len(raw) != 12 or any(c not in "0123456789abcdefABCDEF" for c in raw):
                raise bilingual("una clave MIFARE son 12 dígitos hexadecimales (opcionalmente con prefijo A: o B:)",
                                "a MIFARE key is 12 hex digits (optionally prefixed A: or B:)")
        return keys


class MagstripeSettings(_Section):
    evdev_device: str | None = Field(None, description="/dev/input/by-id/...-event-kbd of a wedge reader.")
    evdev_name: str = Field("wedge", min_length=1, max_length=64,
                            description="The wedge reader's name in swipe events (and in `pos_for_reader`).")
    serial_port: str | None = Field(None, description="Serial port of a plain-line reader.")
    serial_name: str = Field("serial", min_length=1, max_length=64,
                             description="The serial reader's name in swipe events (and in `pos_for_reader`).")
    serial_baudrate: int = Field(9600, ge=1200)
    inter_key_timeout_s: float = Field(0.15, gt=0, le=2)


class PinSettings(_Section):
    bundle_public_key: str | None = Field(
        None, description="Head office Ed25519 public key for PIN bundles (base64, 32 bytes).")
    max_failures: int = Field(5, ge=1, le=20, description="Failed PINs in a row before a lockout.")
    lockout_base_s: int = Field(300, ge=1, description="First lockout; doubles each further lockout.")
    lockout_max_s: int = Field(24 * 3600, ge=1)
    lockout_forget_s: int = Field(
        24 * 3600, ge=60,
        description="Escalation memory: lockouts are forgotten only after this long without a failure "
                    "(a correct PIN does not reset them).")
    station_max_failures: int = Field(
        30, ge=1, le=1000,
        description="Failed PINs across all attendants within station_window_s before every PIN check "
                    "at the station pauses (stops one PIN being tried against many attendant codes).")
    station_window_s: int = Field(600, ge=10, description="Window in which station_max_failures count.")
    station_lockout_s: int = Field(300, ge=1, description="How long PIN checks pause after station_max_failures.")
    max_parallel_checks: int = Field(
        2, ge=1, le=16,
        description="PIN checks computed at once (each argon2id check takes about 19 MiB); others wait.")
    check_wait_s: float = Field(
        2.0, gt=0, le=30,
        description="How long a PIN check waits for a free slot before a 503 pin_checks_busy with Retry-After.")


class CardsSettings(_Section):
    pcsc: PcscSettings = Field(default_factory=PcscSettings)
    magstripe: MagstripeSettings = Field(default_factory=MagstripeSettings)
    lines: CardLineSettings = Field(default_factory=CardLineSettings)
    pos_for_reader: dict[str, str] = Field(
        default_factory=dict,
        description="Reader name -> the POS (counter) it sits at, named in swipe events, for stations with "
                    "several counters. PC/SC readers are named as PC/SC reports them.")
    pins: PinSettings = Field(default_factory=PinSettings)
    session_ttl_s: int = Field(120, ge=5, le=3600, description="How long a swipe waits for the PIN.")
    authorized_ttl_s: int = Field(300, ge=10, le=3600,
                                  description="How long an authorized swipe may be used by a sale.")
    authorized_uses: int = Field(1, ge=1, le=20,
                                 description="Sales or redemptions one PIN entry authorizes (then the PIN is "
                                             "asked again).")
    pin_attempts_per_swipe: int = Field(3, ge=1, le=20,
                                        description="Wrong PINs on one swipe before it is closed (swipe again).")
