"""``loyalty-agent run``, ``status`` and ``check-config``: the agent and its station as a whole."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent import __version__
from agent.cli.common import add_common_options, load


def cmd_run(args: argparse.Namespace) -> int:
    from agent.logsetup import configure_logging
    from agent.runner import run

    settings = load(args)
    configure_logging(settings.log_level)
    return run(settings)


def cmd_check_config(args: argparse.Namespace) -> int:
    from agent.secret_fields import masked_dump

    settings = load(args)
    # Technicians paste this into tickets: secrets (declared with secret_field) are masked.
    print(json.dumps(masked_dump(settings), indent=2, ensure_ascii=False))
    print("configuración válida", file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from agent.station import open_database

    settings = load(args)
    db = open_database(settings, create=False)
    try:
        def read(c: Any) -> dict[str, Any]:
            totals = c.execute("SELECT * FROM outbox_totals").fetchone()
            states = dict(c.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
            oldest = c.execute("SELECT created_at FROM outbox WHERE state != 'confirmed' ORDER BY seq LIMIT 1").fetchone()
            return {
                "version": __version__,
                "station_id": settings.station.id,
                "data_dir": str(settings.storage.data_dir),
                "schema_version": c.execute("SELECT name FROM schema_migrations ORDER BY rowid DESC LIMIT 1").fetchone()[0],
                "customers": c.execute("SELECT count(*) FROM customers").fetchone()[0],
                "outbox": {"pending": states.get("pending", 0), "delivered": states.get("delivered", 0),
                           "confirmed": states.get("confirmed", 0), "pending_bytes": totals["pending_bytes"],
                           "oldest_unconfirmed_at": oldest[0] if oldest else None,
                           "refused": totals["refused_count"]},
            }
        print(json.dumps(db.read(read), indent=2))
    finally:
        db.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="ejecutar el agente (API local, sincronización, dispositivos)")
    add_common_options(p)
    p.add_argument("--host", help="dirección de escucha (por defecto 127.0.0.1)")
    p.add_argument("--port", type=int, help="puerto (por defecto 8787)")
    p.add_argument("--mqtt-url", help="mqtt://host:puerto o mqtts://host:puerto de la oficina central")
    p.add_argument("--station-id", help="identificador de la estación")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="estado del almacenamiento y de la cola de sincronización")
    add_common_options(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("check-config", help="validar la configuración y mostrar la efectiva")
    add_common_options(p)
    p.set_defaults(func=cmd_check_config)
