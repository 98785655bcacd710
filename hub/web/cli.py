"""``loyalty-hub web`` (serve the web app) and ``loyalty-hub web-user add`` (back-office users).

    loyalty-hub web --database-url URL [--host 127.0.0.1] [--port 8080]
    loyalty-hub web-user add USER --role admin|manager|readonly [--station STATION]  (password on stdin)
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from hub.central.audit import default_actor
from hub.config import Settings, require


def add_commands(sub: Any) -> None:
    web = sub.add_parser("web", help="sirve las páginas web (clientes en /, oficina en /admin)")
    web.add_argument("--host", default="127.0.0.1", help="dirección (por defecto 127.0.0.1; detrás de un proxy TLS)")
    web.add_argument("--port", type=int, default=8080)
    users = sub.add_parser("web-user", help="usuarios de la oficina").add_subparsers(dest="action", required=True)
    add = users.add_parser("add", help="crea o cambia un usuario (contraseña por stdin)")
    add.add_argument("username"), add.add_argument("--role", required=True, choices=("admin", "manager", "readonly"))
    add.add_argument("--station", help="la estación de un encargado (manager)")
    for cmd in (web, add):
        cmd.add_argument("--config", type=Path, help="archivo TOML de configuración (o LOYALTY_HUB_CONFIG)")
        cmd.add_argument("--database-url", help="postgresql://usuario@host:puerto/base")
    web.add_argument("--mqtt-url", help="broker para publicar los PIN cuando se bloquea un playero")


def cmd_web(settings: Settings, args: argparse.Namespace, lang: str) -> int:
    import uvicorn

    from hub.web.app import create_app

    require(settings, "database")
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def cmd_web_user(settings: Settings, args: argparse.Namespace, lang: str) -> int:
    from hub.web.auth import add_user

    require(settings, "database")
    password = sys.stdin.readline().rstrip("\n")
    with psycopg.connect(settings.database.url or "", autocommit=True) as conn:
        add_user(conn, default_actor(settings.central.actor), args.username, password, args.role, args.station)
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace, str], int]] = {"web": cmd_web, "web-user": cmd_web_user}
