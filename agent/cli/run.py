"""``loyalty-agent run`` and ``check-config``: the agent and its configuration."""
from __future__ import annotations

import argparse
import json
import sys

from agent.cli.common import add_common_options, load, non_empty


def cmd_run(args: argparse.Namespace) -> int:
    from agent.logsetup import configure_logging
    from agent.runner import run

    settings = load(args)
    configure_logging(settings.log_level)
    return run(settings)


def cmd_check_config(args: argparse.Namespace) -> int:
    from agent.config_check import check
    from agent.secret_fields import masked_dump

    settings = load(args)
    # Technicians paste this into tickets: secrets (declared with secret_field) are masked.
    print(json.dumps(masked_dump(settings), indent=2, ensure_ascii=False))
    findings = check(settings)  # the files and devices the settings name
    for finding in findings:
        print(finding.line(), file=sys.stderr)
    if any(f.level == "error" for f in findings):
        print("configuración con errores", file=sys.stderr)
        return 2
    print("configuración válida", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="ejecutar el agente (API local, sincronización, dispositivos)")
    add_common_options(p)
    p.add_argument("--host", type=non_empty, help="dirección de escucha (por defecto 127.0.0.1)")
    p.add_argument("--port", type=int, help="puerto (por defecto 8787)")
    p.add_argument("--mqtt-url", type=non_empty, help="mqtt://host:puerto o mqtts://host:puerto de la oficina central")
    p.add_argument("--station-id", type=non_empty, help="identificador de la estación")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validar la configuración y mostrar la efectiva")
    add_common_options(p)
    p.set_defaults(func=cmd_check_config)
