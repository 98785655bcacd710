"""What every ``loyalty-agent`` subcommand shares: the ``--config``/``--data-dir`` options and
loading the settings they name (flags override the file and the environment)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.config import Settings


def non_empty(value: str) -> str:
    """An option given with an empty value is a mistake (an unset variable in a script), never
    "use the default": ``--station-id ""`` must not run as station-local."""
    if not value.strip():
        raise argparse.ArgumentTypeError("no puede estar vacío (omita la opción para usar el valor por defecto)")
    return value


def non_empty_path(value: str) -> Path:
    return Path(non_empty(value))


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=non_empty_path, help="archivo TOML de configuración (o LOYALTY_AGENT_CONFIG)")
    parser.add_argument("--data-dir", type=non_empty_path, help="carpeta de datos (base de datos, claves)")


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line flags, as nested settings that override the file and the environment."""
    out: dict[str, Any] = {}
    if getattr(args, "data_dir", None) is not None:
        out.setdefault("storage", {})["data_dir"] = str(args.data_dir)
    if getattr(args, "host", None) is not None:
        out.setdefault("api", {})["host"] = args.host
    if getattr(args, "port", None) is not None:
        out.setdefault("api", {})["port"] = args.port
    if getattr(args, "mqtt_url", None) is not None:
        out.setdefault("mqtt", {})["url"] = args.mqtt_url
    if getattr(args, "station_id", None) is not None:
        out.setdefault("station", {})["id"] = args.station_id
    return out


def load(args: argparse.Namespace) -> "Settings":
    # Imported here: building the parser (``--help``, ``--version``) must not load pydantic settings.
    from agent.config import load_settings

    return load_settings(getattr(args, "config", None), overrides_from(args))


def running_agent(args: argparse.Namespace) -> tuple[str, int, str] | None:
    """Where the station's running agent listens and the local token to call it with; ``None``
    (after saying why on stderr) when the token cannot be read. A wrong ``--data-dir`` raises
    ``NoStationData`` first, so it is not mistaken for "is the agent running?"."""
    import sys

    from agent.station import require_station
    from agent.tokens import TOKEN_FILE

    settings = load(args)
    require_station(settings)
    host = "127.0.0.1" if settings.api.host in ("0.0.0.0", "::") else settings.api.host
    token_path = settings.storage.key_dir / TOKEN_FILE
    try:
        return host, settings.api.port, token_path.read_text().strip()
    except OSError:
        print(f"no se puede leer {token_path}: ¿está el agente en ejecución y es usted el usuario del servicio?",
              file=sys.stderr)
        return None
