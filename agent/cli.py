"""``loyalty-agent``: the command a technician types. Messages to people are Spanish;
machine output (tokens, JSON) goes to stdout, everything else to stderr."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from agent import __version__

# Feature modules that add subcommands through ``add_parser(subparsers)``.
FEATURE_COMMANDS: tuple[str, ...] = (
    "agent.cards.cli",
    "agent.idcard.cli",
    "agent.queue.sync_cli",
)


def _common(parser: argparse.ArgumentParser) -> None:
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


def load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from agent.config import load_settings

    return load_settings(getattr(args, "config", None), overrides_from(args))


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
    from agent.services import open_database

    settings = load(args)
    db = open_database(settings, create=False)
    try:
        def read(c):  # type: ignore[no-untyped-def]
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


def cmd_token_create(args: argparse.Namespace) -> int:
    from agent.services import open_database
    from agent.tokens import TokenStore

    # Creates the station's database when needed: installers run it before the first ``run``.
    db = open_database(load(args))
    try:
        token = TokenStore(db).create(args.name)
    finally:
        db.close()
    print(token)
    print(f"token creado para {args.name}: guárdelo ahora, no se puede volver a mostrar", file=sys.stderr)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from agent.services import open_database
    from agent.tokens import TokenStore

    db = open_database(load(args), create=False)
    try:
        done = TokenStore(db).revoke(args.name)
    finally:
        db.close()
    print("token revocado" if done else f"no hay token activo para {args.name}", file=sys.stderr)
    return 0 if done else 1


def cmd_token_list(args: argparse.Namespace) -> int:
    from agent.services import open_database
    from agent.tokens import TokenStore

    db = open_database(load(args), create=False)
    try:
        for row in TokenStore(db).list():
            print(json.dumps(row))
    finally:
        db.close()
    return 0


def cmd_customers_lookup(args: argparse.Namespace) -> int:
    from agent.customers.service import CustomerService
    from agent.services import open_database

    # Only the customer registry: building the whole agent (build_services) would wire devices,
    # create their key files and print their warnings, none of which a lookup needs.
    settings = load(args)
    db = open_database(settings, create=False)
    try:
        customers = CustomerService(db, settings)
        if args.q:
            items = customers.search(args.q)
            for item in items:
                print(item.model_dump_json())
            return 0 if items else 1
        customer = customers.find_by_document(args.country, args.type, args.number)
        print(customer.model_dump_json(indent=2))
    finally:
        db.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty-agent", description="Agente de fidelización de la estación")
    parser.add_argument("--version", action="version", version=f"loyalty-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMANDO")

    p = sub.add_parser("run", help="ejecutar el agente (API local, sincronización, dispositivos)")
    _common(p)
    p.add_argument("--host", help="dirección de escucha (por defecto 127.0.0.1)")
    p.add_argument("--port", type=int, help="puerto (por defecto 8787)")
    p.add_argument("--mqtt-url", help="mqtt://host:puerto o mqtts://host:puerto de la oficina central")
    p.add_argument("--station-id", help="identificador de la estación")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="estado del almacenamiento y de la cola de sincronización")
    _common(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("check-config", help="validar la configuración y mostrar la efectiva")
    _common(p)
    p.set_defaults(func=cmd_check_config)

    token = sub.add_parser("token", help="tokens de los clientes POS").add_subparsers(dest="token_cmd", required=True)
    p = token.add_parser("create", help="crear un token (se muestra una sola vez)")
    _common(p)
    p.add_argument("--name", required=True, help="nombre del cliente POS, p. ej. pos-1")
    p.set_defaults(func=cmd_token_create)
    p = token.add_parser("revoke", help="revocar el token de un cliente")
    _common(p)
    p.add_argument("--name", required=True)
    p.set_defaults(func=cmd_token_revoke)
    p = token.add_parser("list", help="listar clientes con token")
    _common(p)
    p.set_defaults(func=cmd_token_list)

    customers = sub.add_parser("customers", help="clientes").add_subparsers(dest="customers_cmd", required=True)
    p = customers.add_parser("lookup", help="buscar un cliente por documento o por nombre")
    _common(p)
    p.add_argument("--country", default="CL")
    p.add_argument("--type", default="RUT")
    p.add_argument("--number")
    p.add_argument("-q", help="buscar por nombre, documento o ID de fidelización")
    p.set_defaults(func=cmd_customers_lookup)

    for module_name in FEATURE_COMMANDS:
        importlib.import_module(module_name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from agent.config import ConfigError
    from agent.errors import AgentError
    from agent.services import NoStationData

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "customers" and not (args.q or args.number):
        parser.error("indique --number o -q")
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"error de configuración: {exc}", file=sys.stderr)
        return 2
    except NoStationData as exc:  # 2 like a configuration error: 1 means "not found" for lookups
        print(f"error: {exc.es} ({exc.code})", file=sys.stderr)
        return 2
    except AgentError as exc:
        print(f"error: {exc.es} ({exc.code})", file=sys.stderr)
        for err in exc.errors:
            if (err.es, err.code) != (exc.es, exc.code):  # the detail, unless it repeats the headline
                print(f"  {err.field}: {err.es} ({err.code})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
