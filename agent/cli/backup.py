"""``loyalty-agent backup DEST`` and ``restore SRC``: the station's data and keys, consistently.

Backup works while the agent runs (SQLite's online backup API); restore refuses while it runs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from agent.cli.common import add_common_options, load
from agent.errors import AgentError


def _read_key(path: Path | None, what_es: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise AgentError("backup_key_unreadable", f"no se puede leer {what_es} {path}: {exc.strerror}",
                         f"cannot read the key file {path}: {exc.strerror}") from None


def cmd_backup(args: argparse.Namespace) -> int:
    from agent import __version__
    from agent.store import datadir
    from agent.station import require_station
    from agent.store.archive import create_backup

    settings = load(args)
    datadir.check_access(settings.storage.data_dir)
    require_station(settings)
    public_key = _read_key(args.encrypt_to, "la clave pública")
    dest: Path = args.dest
    if dest.is_dir():
        suffix = ".tar.enc" if public_key else ".tar"
        dest = dest / f"loyalty-backup-{settings.station.id}-{time.strftime('%Y%m%dT%H%M%S')}{suffix}"
    if dest.exists():
        raise AgentError("backup_exists", f"{dest} ya existe; elija otro nombre", f"{dest} already exists")
    if not dest.parent.is_dir():
        raise AgentError("backup_folder_missing", f"la carpeta {dest.parent} no existe",
                         f"the folder {dest.parent} does not exist")
    summary = create_backup(settings.storage.data_dir, dest, version=__version__, public_key_pem=public_key)
    print(json.dumps({"path": str(summary.path), "bytes": summary.bytes, "customers": summary.customers,
                      "unconfirmed_events": summary.unconfirmed_events, "seconds": round(summary.seconds, 2),
                      "encrypted": public_key is not None}))
    print(f"copia escrita en {summary.path} ({summary.customers} clientes, {summary.unconfirmed_events} "
          f"eventos sin confirmar); guárdela fuera de la estación", file=sys.stderr)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from agent import __version__
    from agent.station import MIGRATIONS
    from agent.store.archive import restore_backup

    settings = load(args)
    if not args.source.is_file():
        raise AgentError("backup_missing", f"no existe la copia {args.source}", f"no backup at {args.source}")
    summary = restore_backup(settings.storage.data_dir, args.source, known_migrations=list(MIGRATIONS),
                             version=__version__, private_key_pem=_read_key(args.key, "la clave privada"))
    print(json.dumps({"customers": summary.customers, "unconfirmed_events": summary.unconfirmed_events,
                      "seconds": round(summary.seconds, 2)}))
    print(f"restaurada {args.source}: {summary.customers} clientes, {summary.unconfirmed_events} eventos sin "
          f"confirmar (se reenviarán a la oficina central); lo anterior quedó en before-restore-*", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("backup", help="copia consistente de la base de datos y las claves (con el agente en marcha)")
    add_common_options(p)
    p.add_argument("dest", type=Path, help="archivo a crear, o carpeta donde crearlo")
    p.add_argument("--encrypt-to", type=Path, metavar="PEM",
                   help="cifrar para la clave pública (X25519 o RSA) de la oficina central")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restaurar una copia (con el agente detenido)")
    add_common_options(p)
    p.add_argument("source", type=Path, help="archivo de copia")
    p.add_argument("--key", type=Path, metavar="PEM", help="clave privada, si la copia está cifrada")
    p.set_defaults(func=cmd_restore)
