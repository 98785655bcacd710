"""``loyalty-hub`` subcommands of the central administration.

    loyalty-hub keys generate --out FILE | keys public [--pin]
    loyalty-hub station add STATION --name NAME --point-value V [--install-dir DIR]
    loyalty-hub attendant add STATION ID --name NAME | set-pin STATION ID (PIN on stdin) | lock | unlock
    loyalty-hub pins publish [STATION ...]
    loyalty-hub config set {program,tiers,messages,rewards} FILE.json | config publish [--only rules|catalog]
    loyalty-hub close-month YYYY-MM [--out DIR]

PINs are read from standard input (never from the command line, where ``ps`` shows them).
Changes to attendants publish the station's new bundle at once when ``mqtt.url`` is set.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import psycopg

from hub.central import attendants, audit, authoring, keys, rewards_cli, signed_publish
from hub.central.errors import CentralError
from hub.central.publisher import known_stations, publish_retained
from hub.config import Settings, require


def _common(cmd: argparse.ArgumentParser, mqtt: bool = True) -> None:
    cmd.add_argument("--config", type=Path, help="archivo TOML de configuración (o LOYALTY_HUB_CONFIG)")
    cmd.add_argument("--database-url", help="postgresql://usuario@host:puerto/base")
    if mqtt:
        cmd.add_argument("--mqtt-url", help="mqtt://host:puerto o mqtts://host:puerto")


def add_commands(sub: Any) -> None:
    keys_cmd = sub.add_parser("keys", help="clave de firma de la oficina central").add_subparsers(dest="action", required=True)
    gen = keys_cmd.add_parser("generate", help="crea la clave de firma (nunca reemplaza una existente)")
    gen.add_argument("--out", type=Path, required=True)
    _common(gen, mqtt=False)
    public = keys_cmd.add_parser("public", help="muestra la clave pública para las estaciones")
    public.add_argument("--pin", action="store_true",
                        help="la de los paquetes de PIN ([cards.pins] bundle_public_key; central.pin_signing_key_file)")
    _common(public, mqtt=False)

    station = sub.add_parser("station", help="estaciones").add_subparsers(dest="action", required=True)
    add = station.add_parser("add", help="registra una estación y crea su clave PIN")
    add.add_argument("station"), add.add_argument("--name", required=True)
    add.add_argument("--point-value", required=True, help="valor de un punto para la liquidación (p. ej. 1.5)")
    add.add_argument("--install-dir", type=Path, help="copia pin_pepper.key aquí para instalarla en la estación")
    _common(add, mqtt=False)

    att = sub.add_parser("attendant", help="playeros y sus PIN").add_subparsers(dest="action", required=True)
    for action, helptext in (("add", "crea un playero"), ("set-pin", "fija o reinicia el PIN (leído de stdin)"),
                             ("lock", "bloquea al playero"), ("unlock", "desbloquea al playero")):
        cmd = att.add_parser(action, help=helptext)
        cmd.add_argument("station"), cmd.add_argument("attendant")
        if action == "add":
            cmd.add_argument("--name", required=True)
        _common(cmd)

    pins = sub.add_parser("pins", help="paquetes de PIN").add_subparsers(dest="action", required=True)
    pub = pins.add_parser("publish", help="firma y publica un paquete nuevo (todas las estaciones si no se indica)")
    pub.add_argument("stations", nargs="*")
    _common(pub)

    config = sub.add_parser("config", help="programa de puntos, niveles, mensajes y catálogo").add_subparsers(
        dest="action", required=True)
    cset = config.add_parser("set", help="valida y guarda un documento JSON")
    cset.add_argument("kind", choices=authoring.KINDS), cset.add_argument("file", type=Path)
    _common(cset, mqtt=False)
    cpub = config.add_parser("publish", help="firma y publica a todas las estaciones")
    cpub.add_argument("--only", choices=("rules", "catalog"))
    _common(cpub)
    _add_close(sub)
    rewards_cli.add_commands(sub, _common)


def _connect(settings: Settings) -> psycopg.Connection:
    require(settings, "database")
    return psycopg.connect(settings.database.url or "", autocommit=True,
                           connect_timeout=settings.database.connect_timeout_s)


def _actor(settings: Settings) -> str:
    return audit.default_actor(settings.central.actor)


def cmd_keys(settings: Settings, args: argparse.Namespace, lang: str) -> int:
    central = settings.central
    if args.action == "generate":
        key = keys.generate_signing_key(args.out)
    elif args.pin:
        key = keys.load_pin_key(central.signing_key_file, central.pin_signing_key_file)
    else:
        key = keys.load_signing_key(central.signing_key_file)
    print(keys.public_b64(key))
    return 0


def cmd_station(settings: Settings, args: argparse.Namespace, lang: str) -> int:
    try:
        value = Decimal(args.point_value)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise CentralError("bad_point_value", "--point-value debe ser un número >= 0", "--point-value must be a number >= 0")
    pepper = keys.create_pepper(settings.central.pepper_dir, args.station)
    with _connect(settings) as conn, conn.transaction():
        conn.execute("INSERT INTO central_stations(station_id, name, point_value) VALUES (%s, %s, %s)"
                     " ON CONFLICT (station_id) DO UPDATE SET name = excluded.name, point_value = excluded.point_value",
                     (args.station, args.name, value))
        audit.record(conn, _actor(settings), "station.saved", {"station": args.station, "point_value": str(value)})
    if args.install_dir:
        from agent.cards.pins import install_pepper

        install_pepper(args.install_dir, pepper)
    return 0


def _publish_bundles(settings: Settings, conn: psycopg.Connection, stations: list[str]) -> None:
    key = keys.load_pin_key(settings.central.signing_key_file, settings.central.pin_signing_key_file)
    bundles = [attendants.build_bundle(conn, key, s, days=settings.central.pin_bundle_days) for s in stations]
    publish_retained(settings.mqtt, [(b.station_id, "pin_bundle", b.body) for b in bundles])
    for bundle in bundles:
        attendants.mark_published(conn, _actor(settings), bundle)
        print(f"{bundle.station_id}: paquete de PIN versión {bundle.version} ({bundle.attendants} playeros) publicado",
              file=sys.stderr)


def cmd_attendant(settings: Settings, args: argparse.Namespace, lang: str) -> int:
    actor = _actor(settings)
    with _connect(settings) as conn:
        if args.action == "add":
            attendants.add_attendant(conn, actor, args.station, args.attendant, args.name)
        elif args.action == "set-pin":
            pin = sys.stdin.readline().strip()
            attendants.set_pin(conn, actor, args.station, args.attendant, pin,
                               pepper_dir=settings.central.pepper_dir, min_length=settings.central.pin_min_length)
        else:
            attendants.set_locked(conn, actor, args.station, args.attendant, args.action == "lock")
        if settings.mqtt.url and args.action != "add":
            _publish_bundles(settings, conn, [args.station])
        elif args.action != "add":
            print("sin mqtt.url: publique luego con loyalty-hub pins publish " + args.station, file=sys.stderr)
    return 0


def cmd_pins(settings: Settings, args: argparse.Namespace, lang: str) -> int:
    with _connect(settings) as conn:
        stations = args.stations or [r[0] for r in conn.execute("SELECT station_id FROM central_stations ORDER BY 1")]
        _publish_bundles(settings, conn, stations)
    return 0


def cmd_config(settings: Settings, args: argparse.Namespace, lang: str) -> int:
    with _connect(settings) as conn:
        if args.action == "set":
            try:
                document = json.loads(args.file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CentralError("unreadable_file", f"no se pudo leer {args.file}: {exc}",
                                   f"could not read {args.file}: {exc}") from None
            authoring.store(conn, _actor(settings), args.kind, document)
            return 0
        key = keys.load_signing_key(settings.central.signing_key_file)
        signed = []
        if args.only in (None, "rules"):
            signed.append(signed_publish.sign_rules(conn, key, _actor(settings)))
        if args.only in (None, "catalog"):
            signed.append(signed_publish.sign_catalog(conn, key, _actor(settings)))
        stations = known_stations(conn)
        publish_retained(settings.mqtt, [(s, doc.kind, doc.body) for doc in signed for s in stations])
        for doc in signed:
            print(f"{doc.kind} versión {doc.version} publicada en {len(stations)} estaciones", file=sys.stderr)
    return 0


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace, str], int]] = {
    "keys": cmd_keys, "station": cmd_station, "attendant": cmd_attendant, "pins": cmd_pins, "config": cmd_config,
}


def _add_close(sub: Any) -> None:
    close = sub.add_parser("close-month", help="cierre mensual: vencimientos, flotas y liquidación (idempotente)")
    close.add_argument("month", help="AAAA-MM")
    close.add_argument("--out", type=Path, help="carpeta para la liquidación en CSV y PDF")
    _common(close, mqtt=False)


def cmd_close(settings: Settings, args: argparse.Namespace, lang: str) -> int:
    from hub.central import close, report

    with _connect(settings) as conn:
        result = close.close_month(conn, _actor(settings), args.month, expiry_months=settings.central.expiry_months,
                                  zone=settings.chain.zone)
        month = f"{result.month:%Y-%m}"
        if result.first_run:
            print(f"mes {month} cerrado: {result.expired_points} puntos vencidos en {result.expired_accounts} cuentas, "
                  f"{result.fleet_transfers} flotas sumadas a su titular, {result.settlement_points} puntos liquidados",
                  file=sys.stderr)
        else:
            print(f"el mes {month} ya estaba cerrado (por {result.closed_by} el {result.closed_at:%Y-%m-%d %H:%M} UTC): "
                  f"los vencimientos y las flotas no se repiten; liquidación recalculada ({result.settlement_points} "
                  f"puntos, ejecución {result.runs})", file=sys.stderr)
        if result.fleet_without_owner:
            shown = ", ".join(result.fleet_without_owner[:20])
            more = len(result.fleet_without_owner) - 20
            print(f"flota sin titular (no se sumó): {shown}" + (f" y {more} más" if more > 0 else ""), file=sys.stderr)
        for station, reason in result.incomplete:
            print(f"liquidación INCOMPLETA para {station}: {reason}", file=sys.stderr)
        if args.out:
            rows = close.report_rows(conn, result.month)
            for path in [*report.write_csv(rows, args.out), report.write_pdf(rows, args.out)]:
                print(path)
    return 0


def cmd_rewards(settings: Settings, args: argparse.Namespace, lang: str) -> int:
    with _connect(settings) as conn:
        return rewards_cli.cmd_rewards(settings, args, lang, conn, _actor(settings))


COMMANDS["close-month"] = cmd_close
COMMANDS["rewards"] = cmd_rewards
