"""Agent settings: embedded defaults, then a TOML file, then environment, then command-line flags.

The file is named by ``--config`` or ``LOYALTY_AGENT_CONFIG``; environment variables are
``LOYALTY_AGENT_<SECTION>__<FIELD>`` (e.g. ``LOYALTY_AGENT_API__PORT=8788``). Every section
forbids unknown keys, so a typo in the file is an error at start-up, not a silently ignored
setting. Loading and its (Spanish-first) errors live in agent/settings_loader.py, shared with the
hub. See docs/configuration.md for the full reference.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import SettingsConfigDict

from agent.api.config import ApiSettings
from agent.biometric.config import FingerprintSettings
from agent.cards.config import CardsSettings
from agent.clock import TimeZoneName
from agent.customers.config import EnrollmentSettings
from agent.idcard.config import IdCardSettings
from agent.loyalty.config import LoyaltySettings
from agent.ops.config import MonitoringSettings
from agent.printing.config import PrinterSettings
from agent.queue.config import MqttSettings, SyncSettings
from agent.settings_loader import ConfigError, TomlSettings, bilingual, load

__all__ = ["CONFIG_ENV", "ConfigError", "Settings", "load_settings"]

CONFIG_ENV = "LOYALTY_AGENT_CONFIG"
SUPPORTED_COUNTRIES = ("CL", "CO", "AR", "EC", "PE")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StationSettings(_Section):
    id: str = Field("station-local", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Station id, unique in the chain; used in MQTT topics.")
    country: Literal["CL", "CO", "AR", "EC", "PE"] = Field("CL", description="Country for phone numbers and default documents.")
    timezone: TimeZoneName = Field("America/Santiago", description="IANA time zone of the station / program.")


class StorageSettings(_Section):
    data_dir: Path = Field(Path("data"), description="Database, keys and captures live here (systemd: /var/lib/loyalty-agent).")
    min_free_bytes: int | None = Field(
        64 * 1024 * 1024, ge=0,
        description="Free disk space kept in reserve: new work is refused (507 storage_full) below it, so "
                    "security events, head office's acknowledgements and checkpoints always have room. "
                    "monitoring.disk_free_min_bytes (health disk_low, a warning) must be at least this: "
                    "the station warns before it refuses.")

    @property
    def database_path(self) -> Path:
        return self.data_dir / "agent.db"

    @property
    def key_dir(self) -> Path:
        return self.data_dir / "keys"


class DeviceSettings(_Section):
    simulated: bool = Field(True, description="Use the built-in simulated devices (no hardware needed).")


class Settings(TomlSettings):
    model_config = SettingsConfigDict(
        env_prefix="LOYALTY_AGENT_", env_nested_delimiter="__", extra="forbid"
    )

    station: StationSettings = Field(default_factory=StationSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    enrollment: EnrollmentSettings = Field(default_factory=EnrollmentSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    sync: SyncSettings = Field(default_factory=SyncSettings)
    devices: DeviceSettings = Field(default_factory=DeviceSettings)
    fingerprint: FingerprintSettings = Field(default_factory=FingerprintSettings)
    cards: CardsSettings = Field(default_factory=CardsSettings)
    idcard: IdCardSettings = Field(default_factory=IdCardSettings)
    loyalty: LoyaltySettings = Field(default_factory=LoyaltySettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    printer: PrinterSettings = Field(default_factory=PrinterSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _warn_before_refusing(self) -> "Settings":
        # Two thresholds on the same disk, one relation: health says disk_low (a warning to
        # free space) before writes are refused with storage_full, never after.
        reserve = self.storage.min_free_bytes
        if reserve is not None and self.monitoring.disk_free_min_bytes < reserve:
            raise bilingual(
                "monitoring.disk_free_min_bytes debe ser al menos storage.min_free_bytes (la salud avisa disk_low "
                "antes de que las escrituras se rechacen con storage_full)",
                "monitoring.disk_free_min_bytes must be at least storage.min_free_bytes (health warns disk_low "
                "before writes are refused with storage_full)")
        return self


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build the settings; ``overrides`` are nested dicts from command-line flags."""
    return load(Settings, CONFIG_ENV, config_file, overrides)
