"""Settings of the sync with head office over MQTT (mounted as ``Settings.mqtt``)."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.secret_fields import secret_field


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
        # Checked here so check-config catches it, not the sync thread hours later. The value is
        # never echoed: it may hold a password (credentials in the URL are refused, first).
        if not value:
            return None
        parsed = urlparse(value)
        if "@" in parsed.netloc:
            raise ValueError("must not contain a user or password: set mqtt.username and mqtt.password "
                             "(or LOYALTY_AGENT_MQTT__PASSWORD)")
        try:
            port = parsed.port
        except ValueError:
            port = -1
        if (parsed.scheme not in ("mqtt", "mqtts") or not parsed.hostname or port == 0 or port == -1
                or parsed.path not in ("", "/") or parsed.query or parsed.fragment):
            raise ValueError("must be mqtt://host:port or mqtts://host:port (port 1-65535, nothing after it)")
        return value

    @model_validator(mode="after")
    def _no_silent_plaintext(self) -> "MqttSettings":
        if not self.url or urlparse(self.url).scheme != "mqtt" or self.allow_plaintext:
            return self
        set_ = [name for name in ("password", "ca_file", "cert_file", "key_file") if getattr(self, name)]
        if set_:
            names = ", ".join(f"mqtt.{n}" for n in set_)
            raise ValueError(f"mqtt.url is mqtt:// (plain TCP) but {names} is set: TLS would be silently off"
                             f"{' and the password sent in clear' if 'password' in set_ else ''}. Use mqtts://, "
                             "or set mqtt.allow_plaintext = true if this is really wanted")
        return self
