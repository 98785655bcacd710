"""``loyalty-agent pins import FILE``: install a signed attendant PIN bundle offline (USB stick,
technician laptop) when the station cannot receive it over the sync downlink."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.cli.common import add_common_options, load


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pins = subparsers.add_parser("pins", help="PIN de playeros").add_subparsers(dest="pins_cmd", required=True)
    p = pins.add_parser("import", help="instalar un paquete de PIN firmado por la oficina central")
    p.add_argument("file", type=Path, help="archivo JSON del paquete")
    add_common_options(p)
    p.add_argument("--public-key", help="clave pública Ed25519 de la oficina central (base64), si no está en la configuración")
    p.set_defaults(func=cmd_pins_import)


def cmd_pins_import(args: argparse.Namespace) -> int:
    from agent.cards.config import CardsSettings
    from agent.cards.pin_bundle import load_public_key
    from agent.cards.pins import AttendantPins
    from agent.errors import AgentError
    from agent.station import open_database, require_station

    settings = load(args)
    require_station(settings)  # a bundle is installed into an existing station, never a new one
    cards: CardsSettings = getattr(settings, "cards", None) or CardsSettings()
    key_text = args.public_key or cards.pins.bundle_public_key
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"no se puede leer {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    db = open_database(settings, create=False)
    try:
        # Idempotent; makes the command work even before the migration list includes cards.
        from agent.cards.pins import MIGRATIONS
        from agent.store.migrations import apply_migrations

        apply_migrations(db, MIGRATIONS)
        try:
            public_key = load_public_key(key_text) if key_text else None
        except ValueError:
            print("la clave pública configurada no es válida (base64 de 32 bytes)", file=sys.stderr)
            return 2
        pins = AttendantPins(db, station_id=settings.station.id, settings=cards.pins, public_key=public_key)
        try:
            bundle = pins.import_bundle(data)
        except AgentError as exc:
            print(f"{exc.es} [{exc.code}]", file=sys.stderr)
            return 1
        print(f"paquete de PIN versión {bundle.version} instalado: {len(bundle.attendants)} playeros, "
              f"vence {bundle.expires_at:%Y-%m-%d %H:%M} UTC", file=sys.stderr)
        return 0
    finally:
        db.close()
