"""What every ``loyalty-agent`` subcommand shares: the ``--config``/``--data-dir`` options and
loading the settings they name (flags override the file and the environment)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.config import Settings


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="archivo TOML de configuración (o LOYALTY_AGENT_CONFIG)")
    parser.add_argument("--data-dir", type=Path, help="carpeta de datos (base de datos, claves)")


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line flags, as nested settings that override the file and the environment."""
    out: dict[str, Any] = {}
    if getattr(args, "data_dir", None):
        out.setdefault("storage", {})["data_dir"] = str(args.data_dir)
    if getattr(args, "host", None):
        out.setdefault("api", {})["host"] = args.host
    if getattr(args, "port", None):
        out.setdefault("api", {})["port"] = args.port
    if getattr(args, "mqtt_url", None):
        out.setdefault("mqtt", {})["url"] = args.mqtt_url
    if getattr(args, "station_id", None):
        out.setdefault("station", {})["id"] = args.station_id
    return out


def load(args: argparse.Namespace) -> "Settings":
    # Imported here: building the parser (``--help``, ``--version``) must not load pydantic settings.
    from agent.config import load_settings

    return load_settings(getattr(args, "config", None), overrides_from(args))
