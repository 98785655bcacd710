"""Settings of the sync with head office over MQTT (mounted as ``Settings.mqtt``)."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.secret_fields import secret_field
from agent.settings_loader import bilingual, check_broker_url


class MqttSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, description="mqtt://host:port or mqtts://host:port; empty = offline (events queue locally).")
    username: str | None = None
    password: str | None = secret_field(None, description="Broker password; check-config prints it masked.")
    ca_file: Path | None = None
    cert_file: Path | None = Field(None, description="Client certificate of this station (mqtts).")
    key_file: Path | None = None
    keepalive_s: int = Field(30, ge=5)
    batch_max_events: int = Field(200, ge=1)
    batch_max_bytes: int = Field(128 * 1024, ge=1024)
    max_inflight: int = Field(16, ge=1, le=1000)
    ack_timeout_s: float = Field(60.0, gt=0, description="Resend delivered-but-unconfirmed events after this long.")
    resend_interval_s: float = Field(
        6 * 3600.0, gt=0,
        description="Longest wait between resends of an event the broker took (PUBACK) on the link still up "
                    "while head office acknowledges nothing (its consumer is away); otherwise the wait "
                    "doubles from ack_timeout_s up to an hour.")
    retention_days: int = Field(7, ge=0, description="Confirmed events are pruned after this many days.")
    outbox_max_bytes: int | None = Field(512 * 1024 * 1024, description="Disk budget for unconfirmed events.")
    outbox_max_age_days: int | None = Field(30, description="Refuse new work when the oldest unconfirmed event is older.")
    reconnect_min_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(60.0, gt=0)
    allow_plaintext: bool = Field(
        False, description="Allow a password or TLS files with an mqtt:// (plain TCP) URL. Without it that "
                           "combination is refused: the password would travel in clear and the files be ignored.")

    @field_validator("url")
    @classmethod
    def _plain_broker_url(cls, value: str | None) -> str | None:
        return check_broker_url(value, "LOYALTY_AGENT_MQTT__PASSWORD")

    @model_validator(mode="after")
    def _no_silent_plaintext(self) -> "MqttSettings":
        if not self.url or urlparse(self.url).scheme != "mqtt" or self.allow_plaintext:
            return self
        set_ = [name for name in ("password", "ca_file", "cert_file", "key_file") if getattr(self, name)]
        if set_:
            names = ", ".join(f"mqtt.{n}" for n in set_)
            raise bilingual(
                f"mqtt.url es mqtt:// (TCP sin cifrar) pero {names} está configurado: TLS quedaría apagado sin "
                f"aviso{' y la contraseña viajaría en claro' if 'password' in set_ else ''}. Use mqtts://, o "
                "ponga mqtt.allow_plaintext = true si de verdad es lo que quiere",
                f"mqtt.url is mqtt:// (plain TCP) but {names} is set: TLS would be silently off"
                f"{' and the password sent in clear' if 'password' in set_ else ''}. Use mqtts://, "
                "or set mqtt.allow_plaintext = true if this is really wanted")
        return self

class SyncSettings(BaseModel):
    """How the station trusts configuration from head office (mounted as ``Settings.sync``)."""

    model_config = ConfigDict(extra="forbid")

    config_public_key: str | None = Field(
        None, description="Head office Ed25519 public key for earning rules and directory deltas (base64, 32 bytes).")
    require_signed_config: bool = Field(
        True, description="Refuse unsigned earning rules and directory deltas (false only during the migration "
                          "from an unsigned head office; signed documents are always verified).")

    @field_validator("config_public_key")
    @classmethod
    def _ed25519_key(cls, value: str | None) -> str | None:
        if value:
            from agent.queue.signed_config import load_public_key

            try:
                load_public_key(value)
            except ValueError:
                raise bilingual("debe ser una clave pública Ed25519 en base64 (32 bytes)",
                                "must be a base64 Ed25519 public key (32 bytes)") from None
        return value or None
