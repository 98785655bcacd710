"""``loyalty-hub rewards ...``: pending requests, the weekly order and its slips, replenishment,
shipments, immobilized stock and statistics. Tables go to stdout as CSV (UTF-8)."""
from __future__ import annotations

import argparse
import csv
import sys
from datetime import date
from pathlib import Path
from typing import Any

from hub.central import rewards
from hub.central.close import parse_month
from hub.central.errors import CentralError
from hub.config import Settings


def add_commands(sub: Any, common: Any) -> None:
    cmd = sub.add_parser("rewards", help="premios: pedidos semanales, envíos, stock en consignación")
    actions = cmd.add_subparsers(dest="action", required=True)
    for name, helptext in (("pending", "solicitudes pendientes (aún sin pedido)"),
                           ("order", "arma el pedido consolidado de la semana (idempotente)"),
                           ("slips", "remitos con los datos del cliente para el depósito"),
                           ("replenish", "reposición propuesta: lo entregado en la semana"),
                           ("ship", "registra un envío a una estación"), ("shipments", "envíos y su recepción"),
                           ("immobilized", "stock inmovilizado en estaciones"), ("stats", "estadística del mes")):
        action = actions.add_parser(name, help=helptext)
        if name == "slips":
            action.add_argument("order_id")
        elif name == "replenish":
            action.add_argument("week_start", help="AAAA-MM-DD, primer día de la semana")
        elif name == "ship":
            action.add_argument("shipment_id"), action.add_argument("station"), action.add_argument("reward")
            action.add_argument("quantity", type=int)
        elif name == "stats":
            action.add_argument("month", help="AAAA-MM")
        common(action, mqtt=False)


def _csv(header: list[str], rows: Any) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(header)
    writer.writerows(rows)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CentralError("bad_date", f"fecha inválida {text!r}: use AAAA-MM-DD", f"invalid date {text!r}: use YYYY-MM-DD") from None


def cmd_rewards(settings: Settings, args: argparse.Namespace, lang: str, conn: Any, actor: str) -> int:
    action = args.action
    if action == "pending":
        _csv(["solicitud", "fecha", "estacion", "premio", "cantidad", "cuenta"], rewards.pending(conn))
    elif action == "order":
        order_id, created = rewards.make_order(conn, actor, weekday=settings.central.order_weekday)
        print(f"pedido {order_id} {'armado' if created else 'ya existía: sin cambios'}", file=sys.stderr)
        _csv(["pedido", "premio", "cantidad"], [(order_id, r, q) for r, q in rewards.order_lines(conn, order_id)])
    elif action == "slips":
        slips = rewards.slips(conn, args.order_id)
        _csv(list(slips[0]) if slips else ["redemption_id"], [list(s.values()) for s in slips])
    elif action == "replenish":
        _csv(["estacion", "premio", "cantidad"], rewards.replenishment(conn, _day(args.week_start)))
    elif action == "ship":
        rewards.ship(conn, actor, args.shipment_id, args.station, args.reward, args.quantity)
    elif action == "shipments":
        _csv(["envio", "estacion", "premio", "cantidad", "enviado", "recibido"], rewards.shipments(conn))
    elif action == "immobilized":
        _csv(["estacion", "premio", "stock", "ultima_entrega"], rewards.immobilized(conn, settings.central.immobilized_days))
    elif action == "stats":
        _csv(["premio", "entregados", "solicitados", "puntos_solicitados"], rewards.statistics(conn, parse_month(args.month),
                                                                                      settings.chain.zone))
    return 0
