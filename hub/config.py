"""Hub settings: embedded defaults, then a TOML file, then environment, then command-line flags.

The same conventions as the station agent (agent/config.py): the file is named by ``--config``
or ``LOYALTY_HUB_CONFIG``; environment variables are ``LOYALTY_HUB_<SECTION>__<FIELD>`` (e.g.
``LOYALTY_HUB_DATABASE__URL``); every section forbids unknown keys, and a ``LOYALTY_HUB_*``
variable that names no setting is an error rather than silently ignored. Errors name the
setting but never echo its value: URLs and passwords end up pasted into tickets. The loading
itself is shared with the agent (agent/settings_loader.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import SettingsConfigDict

from agent.settings_loader import ConfigError, TomlSettings, bilingual, check_broker_url, load
from hub.central.config import CentralSettings, ChainSettings

__all__ = ["CONFIG_ENV", "ConfigError", "Settings", "load_settings", "require"]

CONFIG_ENV = "LOYALTY_HUB_CONFIG"
ENV_PREFIX = "LOYALTY_HUB_"
DEFAULT_SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(_Section):
    url: str | None = Field(None, description="mqtt://host:port or mqtts://host:port of the broker (cluster).")
    username: str | None = None
    password: str | None = Field(None, description="Broker password (never printed).")
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id_prefix: str = Field("loyalty-hub", pattern=r"^[A-Za-z0-9_-]{1,40}$")
    share_group: str = Field("hub-events", pattern=r"^[A-Za-z0-9_-]{1,40}$",
                             description="$share group of the event consumers.")
    keepalive_s: int = Field(15, ge=5)
    # How many unacknowledged messages the broker may push to one worker: the most a killed
    # worker can leave unconfirmed (the stations resend them, or the gap check asks for them).
    # Twice the backlog group (ingest.group_backlog_messages): the next group arrives while one commits.
    receive_maximum: int = Field(1000, ge=1, le=65535)

    @field_validator("url")
    @classmethod
    def _plain_broker_url(cls, value: str | None) -> str | None:
        return check_broker_url(value, "LOYALTY_HUB_MQTT__PASSWORD")


class DatabaseSettings(_Section):
    url: str | None = Field(None, description="postgresql://user@host:port/db (libpq URL or key=value string).")
    connect_timeout_s: int = Field(5, ge=1)

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if "://" in value and urlparse(value).scheme not in ("postgresql", "postgres"):
            raise bilingual("debe ser una URL postgresql://...", "must be a postgresql://... URL")
        return value


class IngestSettings(_Section):
    workers: int = Field(1, ge=1, le=64, description="Worker processes started by `loyalty-hub run`.")
    group_max_messages: int = Field(200, ge=1, le=5000,
                                    description="Messages committed in one transaction at most.")
    group_backlog_messages: int = Field(500, ge=1, le=20000,
                                        description="Messages in one transaction at most while a worker is behind.")
    group_max_bytes: int = Field(2_000_000, ge=1, le=1_000_000_000,
                                 description="Message bytes in one transaction at most (a backlog's big batches).")
    # 1 by default: on the 2-core development machine, two workers with two lanes each used more
    # PostgreSQL CPU per event (4 writers into the same indexes) and ingested no faster (docs/hub.md).
    connections: int = Field(1, ge=1, le=16,
                             description="Ingest loops per worker, each with its own PostgreSQL connection and "
                                         "its own share of the stations.")
    group_wait_ms: int = Field(5, ge=0, le=1000,
                               description="How long a worker waits to fill a group before committing.")
    # The contract: a hole usually fills by itself (the station resends after its ack timeout,
    # 60 s by default); ask for a replay when it outlives that, not while the hub is catching up.
    gap_grace_s: float = Field(90.0, gt=0, description="A seq gap open this long while the station is online "
                                                       "triggers a replay request.")
    replay_timeout_s: float = Field(180.0, gt=0, description="A replay request unanswered or unsatisfied "
                                                             "after this long raises an alert.")
    schemas_dir: Path = Field(DEFAULT_SCHEMAS, description="Folder with the event JSON Schemas (docs/schemas).")


class DownlinkSettings(_Section):
    interval_s: float = Field(1.0, gt=0, le=3600, description="Directory deltas are published at most this often.")
    max_movements: int = Field(10, ge=0, le=30, description="Last movements sent with each account.")
    confirm_interval_s: float = Field(30.0, gt=0, le=86400,
                                      description="A balance a station alone changed is confirmed to it this often.")


class Settings(TomlSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid")

    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    downlink: DownlinkSettings = Field(default_factory=DownlinkSettings)
    central: CentralSettings = Field(default_factory=CentralSettings)
    chain: ChainSettings = Field(default_factory=ChainSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings; ``overrides`` are nested dicts from command-line flags."""
    return load(Settings, CONFIG_ENV, config_file, overrides, environ)


def require(settings: Settings, *names: str) -> None:
    """``run`` needs the broker and the database; ``migrate`` only the database."""
    missing = [n for n in names if getattr(getattr(settings, n), "url") is None]
    if missing:
        flags = ", ".join(f"--{n if n == 'mqtt' else 'database'}-url" for n in missing)
        names_ = ", ".join(f"{n}.url" for n in missing)
        raise ConfigError(f"falta {names_} (opción {flags} o archivo de configuración)",
                          f"{names_} missing (option {flags} or the config file)")
