"""``loyalty-agent token create|revoke|list``: the POS clients' bearer tokens."""
from __future__ import annotations

import argparse
import json
import sys

from agent.cli.common import add_common_options, load


def cmd_token_create(args: argparse.Namespace) -> int:
    from agent.station import open_database
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
    from agent.station import open_database
    from agent.tokens import TokenStore

    db = open_database(load(args), create=False)
    try:
        done = TokenStore(db).revoke(args.name)
    finally:
        db.close()
    print("token revocado" if done else f"no hay token activo para {args.name}", file=sys.stderr)
    return 0 if done else 1


def cmd_token_list(args: argparse.Namespace) -> int:
    from agent.station import open_database
    from agent.tokens import TokenStore

    db = open_database(load(args), create=False)
    try:
        for row in TokenStore(db).list():
            print(json.dumps(row))
    finally:
        db.close()
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    token = sub.add_parser("token", help="tokens de los clientes POS").add_subparsers(dest="token_cmd", required=True)
    p = token.add_parser("create", help="crear un token (se muestra una sola vez)")
    add_common_options(p)
    p.add_argument("--name", required=True, help="nombre del cliente POS, p. ej. pos-1")
    p.set_defaults(func=cmd_token_create)
    p = token.add_parser("revoke", help="revocar el token de un cliente")
    add_common_options(p)
    p.add_argument("--name", required=True)
    p.set_defaults(func=cmd_token_revoke)
    p = token.add_parser("list", help="listar clientes con token")
    add_common_options(p)
    p.set_defaults(func=cmd_token_list)
