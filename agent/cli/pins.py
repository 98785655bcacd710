"""``loyalty-agent pins import FILE``: install a signed attendant PIN bundle offline (USB stick,
technician laptop) when the station cannot receive it over the sync downlink."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agent.cli.common import add_common_options, load, non_empty


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    pins = subparsers.add_parser("pins", help="PIN de playeros").add_subparsers(dest="pins_cmd", required=True)
    p = pins.add_parser("import", help="instalar un paquete de PIN firmado por la oficina central")
    p.add_argument("file", type=Path, help="archivo JSON del paquete")
    add_common_options(p)
    p.add_argument("--public-key", type=non_empty,
                   help="solo para confirmar: debe ser la clave ya configurada (cambiarla es 'pins set-key')")
    p.set_defaults(func=cmd_pins_import)
    p = pins.add_parser("set-key", help="cambiar la clave pública de la oficina central (queda registrado y se informa)")
    p.add_argument("public_key", type=non_empty, help="clave pública Ed25519 nueva (base64)")
    add_common_options(p)
    p.set_defaults(func=cmd_pins_set_key)


def cmd_pins_set_key(args: argparse.Namespace) -> int:
    from agent.cards.config import CardsSettings
    from agent.cards.pins import AttendantPins
    from agent.station import open_database

    settings = load(args)
    cards: CardsSettings = getattr(settings, "cards", None) or CardsSettings()
    db = open_database(settings, create=False)
    try:
        pins = AttendantPins(db, station_id=settings.station.id, settings=cards.pins)
        try:
            pins.set_bundle_key(args.public_key)
        except ValueError:
            print("la clave pública no es válida (base64 de 32 bytes)", file=sys.stderr)
            return 2
        print("clave de la oficina central cambiada; el cambio queda registrado y se informa a la oficina central",
              file=sys.stderr)
        return 0
    finally:
        db.close()


def cmd_pins_import(args: argparse.Namespace) -> int:
    from agent.cards.config import CardsSettings
    from agent.cards.pin_bundle import load_public_key
    from agent.cards.pins import AttendantPins
    from agent.errors import AgentError
    from agent.station import open_database, require_station

    settings = load(args)
    require_station(settings)  # a bundle is installed into an existing station, never a new one
    cards: CardsSettings = getattr(settings, "cards", None) or CardsSettings()
    configured = cards.pins.bundle_public_key
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        print(f"no se puede leer {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    db = open_database(settings, create=False)
    try:
        try:
            public_key = load_public_key(configured) if configured else None
        except ValueError:
            print("la clave pública configurada no es válida (base64 de 32 bytes)", file=sys.stderr)
            return 2
        pins = AttendantPins(db, station_id=settings.station.id, settings=cards.pins, public_key=public_key)
        if args.public_key is not None and not _same_key(args.public_key, pins.bundle_key()):
            # Only head office's key verifies: a bundle signed by any key passed here would install
            # (and a huge version would block every later bundle).
            print("--public-key no coincide con la clave de la oficina central de esta estación; no se instaló "
                  "nada. Para cambiar la clave use 'loyalty-agent pins set-key' (queda registrado)", file=sys.stderr)
            return 2
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


def _same_key(text: str, key: object) -> bool:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from agent.cards.pin_bundle import load_public_key

    if key is None:
        return False
    try:
        given = load_public_key(text)
    except ValueError:
        return False
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)  # type: ignore[attr-defined]
    return given.public_bytes(Encoding.Raw, PublicFormat.Raw) == raw
