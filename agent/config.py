"""Agent settings: embedded defaults, then a TOML file, then environment, then command-line flags.

The file is named by ``--config`` or ``LOYALTY_AGENT_CONFIG``; environment variables are
``LOYALTY_AGENT_<SECTION>__<FIELD>`` (e.g. ``LOYALTY_AGENT_API__PORT=8788``). Every section
forbids unknown keys, so a typo in the file is an error at start-up, not a silently ignored
setting. See docs/configuration.md for the full reference.
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

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


class Settings(BaseSettings):
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

    toml_file: ClassVar[Path | None] = None

    @model_validator(mode="after")
    def _warn_before_refusing(self) -> Settings:
        # Two thresholds on the same disk, one relation: health says disk_low (a warning to
        # free space) before writes are refused with storage_full, never after.
        reserve = self.storage.min_free_bytes
        if reserve is not None and self.monitoring.disk_free_min_bytes < reserve:
            raise ValueError("monitoring.disk_free_min_bytes must be at least storage.min_free_bytes "
                             "(health warns disk_low before writes are refused with storage_full)")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.toml_file))
        return tuple(sources)


class ConfigError(Exception):
    pass


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build the settings; ``overrides`` are nested dicts from command-line flags."""
    path = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file not found: {path}")

    _reject_unknown_variables(os.environ)
    # A subclass per call keeps the file choice off the shared class (no global state).
    class _FileSettings(Settings):
        pass

    _FileSettings.toml_file = path
    try:
        loaded = _FileSettings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except Exception as exc:  # a TOML syntax error
        raise ConfigError(str(exc)) from exc
    return loaded


def _describe(exc: ValidationError) -> str:
    """One line per bad setting, without the value given: it may be a password (and this text
    ends up pasted into tickets)."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "invalid settings:\n  " + "\n  ".join(lines)


def _reject_unknown_variables(environ: Mapping[str, str]) -> None:
    """A ``LOYALTY_AGENT_*`` variable that names no setting is a typo (``LOYALTY_AGENT_MQTT_URL``
    for ``LOYALTY_AGENT_MQTT__URL``): pydantic-settings would ignore it and the station would run
    without what the technician set, so it is an error like an unknown key in the file."""
    prefix = Settings.model_config["env_prefix"]
    known = set(Settings.model_fields)
    for name in sorted(environ):
        if not name.upper().startswith(prefix) or name.upper() == CONFIG_ENV:
            continue
        head = name[len(prefix):].split("__", 1)[0].lower()
        if head not in known:
            guess = difflib.get_close_matches(head, known, n=1)
            hint = ""
            if guess:
                section = isinstance(Settings.model_fields[guess[0]].annotation, type) and issubclass(
                    Settings.model_fields[guess[0]].annotation, BaseModel)  # type: ignore[arg-type]
                hint = f"; did you mean {prefix}{guess[0].upper()}{'__...' if section else ''}?"
            raise ConfigError(f"unknown environment variable {name}: settings are "
                              f"{prefix}<SECTION>__<FIELD> with SECTION one of {', '.join(sorted(known))}{hint}")
