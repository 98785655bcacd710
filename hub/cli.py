"""``loyalty-hub``: head office's ingest workers. Messages to people are Spanish (``--lang en``
for English); errors go to stderr with exit code 2 (bad usage or configuration) or 1.

    loyalty-hub migrate --database-url URL
    loyalty-hub run --mqtt-url URL --database-url URL [--workers N]
    loyalty-hub check-config
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from hub.central import cli as central_cli
from hub.central.errors import CentralError
from hub.web import cli as web_cli
from hub.config import ConfigError, Settings, load_settings, require

MESSAGES = {
    "es": {"migrated": "migraciones aplicadas: {names}", "up_to_date": "la base de datos ya está al día",
           "db_error": "error de base de datos: {error}", "config_error": "error de configuración: {error}",
           "valid": "configuración válida", "started": "{n} trabajador(es) iniciado(s)"},
    "en": {"migrated": "migrations applied: {names}", "up_to_date": "the database is up to date",
           "db_error": "database error: {error}", "config_error": "configuration error: {error}",
           "valid": "valid configuration", "started": "{n} worker(s) started"},
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty-hub", description="Oficina central: ingesta de estaciones")
    parser.add_argument("--lang", choices=("es", "en"), default="es", help="idioma de los mensajes")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("migrate", "crea o actualiza las tablas de PostgreSQL"),
                           ("run", "inicia los trabajadores de ingesta"),
                           ("check-config", "muestra la configuración efectiva (sin contraseñas)")):
        cmd = sub.add_parser(name, help=helptext)
        cmd.add_argument("--config", type=Path, help="archivo TOML de configuración (o LOYALTY_HUB_CONFIG)")
        cmd.add_argument("--database-url", help="postgresql://usuario@host:puerto/base")
        if name != "migrate":
            cmd.add_argument("--mqtt-url", help="mqtt://host:puerto o mqtts://host:puerto")
        if name == "run":
            cmd.add_argument("--workers", type=int, help="procesos de ingesta en este equipo (por defecto 1)")
            cmd.add_argument("--name", help="nombre de este trabajador (id de cliente MQTT); por defecto host-pid")
    central_cli.add_commands(sub)
    web_cli.add_commands(sub)
    return parser


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if getattr(args, "database_url", None):
        out.setdefault("database", {})["url"] = args.database_url
    if getattr(args, "mqtt_url", None):
        out.setdefault("mqtt", {})["url"] = args.mqtt_url
    if getattr(args, "workers", None) is not None:
        out.setdefault("ingest", {})["workers"] = args.workers
    return out


def cmd_migrate(settings: Settings, args: argparse.Namespace, say: dict[str, str]) -> int:
    import psycopg

    from hub.db.migrate import migrate

    require(settings, "database")
    with psycopg.connect(settings.database.url or "", autocommit=True,
                         connect_timeout=settings.database.connect_timeout_s) as conn:
        applied = migrate(conn)
    print(say["migrated"].format(names=", ".join(applied)) if applied else say["up_to_date"], file=sys.stderr)
    return 0


def cmd_check_config(settings: Settings, args: argparse.Namespace, say: dict[str, str]) -> int:
    dump = settings.model_dump(mode="json")
    if dump["mqtt"].get("password"):
        dump["mqtt"]["password"] = "********"
    print(json.dumps(dump, indent=2, ensure_ascii=False))
    print(say["valid"], file=sys.stderr)
    return 0


def _worker_main(settings_json: str, name: str) -> None:
    from hub.worker import Worker

    settings = Settings.model_validate_json(settings_json)
    logging.basicConfig(level=settings.log_level, format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s")
    worker = Worker(settings, name)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    worker.run()


def cmd_run(settings: Settings, args: argparse.Namespace, say: dict[str, str]) -> int:
    import psycopg

    from hub.db.migrate import pending

    require(settings, "mqtt", "database")
    with psycopg.connect(settings.database.url or "", autocommit=True,
                         connect_timeout=settings.database.connect_timeout_s) as conn:
        missing = pending(conn)
    if missing:
        raise ConfigError(f"la base de datos necesita migraciones ({', '.join(missing)}): ejecute loyalty-hub migrate")
    base = args.name or f"{socket.gethostname()}-{multiprocessing.current_process().pid}"
    if settings.ingest.workers == 1:
        print(say["started"].format(n=1), file=sys.stderr)
        _worker_main(settings.model_dump_json(), base)
        return 0
    return _supervise(settings, base, say)


def _supervise(settings: Settings, base: str, say: dict[str, str]) -> int:
    """Several workers on this host, each its own process; one that dies is started again."""
    ctx = multiprocessing.get_context("spawn")
    blob = settings.model_dump_json()
    names = [f"{base}-{i}" for i in range(settings.ingest.workers)]
    procs = {n: ctx.Process(target=_worker_main, args=(blob, n), daemon=False) for n in names}
    for proc in procs.values():
        proc.start()
    print(say["started"].format(n=len(procs)), file=sys.stderr)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs.values():
            if proc.is_alive():
                proc.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        time.sleep(0.5)
        for name, proc in list(procs.items()):
            if not proc.is_alive() and not stopping:
                logging.getLogger("hub").warning("el proceso %s terminó (código %s); se inicia de nuevo [worker_restarted]",
                                                  name, proc.exitcode)
                procs[name] = ctx.Process(target=_worker_main, args=(blob, name), daemon=False)
                procs[name].start()
    for proc in procs.values():
        proc.join(15)
    return 0


COMMANDS = {"migrate": cmd_migrate, "run": cmd_run, "check-config": cmd_check_config}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    say = MESSAGES[args.lang]
    try:
        settings = load_settings(args.config, overrides_from(args))
        for extra in (central_cli.COMMANDS, web_cli.COMMANDS):
            if args.command in extra:
                return extra[args.command](settings, args, args.lang)
        return COMMANDS[args.command](settings, args, say)
    except CentralError as exc:
        print(f"error: {exc.message(args.lang)}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(say["config_error"].format(error=exc.text(args.lang)), file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a database that refuses us is reported, not a traceback
        import psycopg

        if isinstance(exc, psycopg.Error):
            print(say["db_error"].format(error=str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__),
                  file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
