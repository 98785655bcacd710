"""Rewards at the station (seed 002, "stock de premios"): stock counts with their differences,
the movement list for audits, scheduled reward requests waiting for the warehouse, and the
replenishment record that every grant makes, consolidated once a week.

Functions taking a connection run inside the caller's transaction.
"""
from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from datetime import datetime
from typing import Any

from agent.clock import iso
from agent.ids import new_id
from agent.store.outbox import append_event

from .errors import LoyaltyError, conflict, not_found
from .history import decode_cursor, encode_cursor
from .requests import StockCountRequest
from .rewards import slip_data

MOVEMENT_KINDS = ("receipt", "consignment_transfer_in", "shipment_receipt", "transfer_out", "grant", "count")


def count_stock(conn: sqlite3.Connection, *, request: StockCountRequest, station: str, at: datetime) -> dict:
    """Set the stock to what was counted; record expected, counted and the difference."""
    row = conn.execute("SELECT s.quantity FROM loyalty_reward_stock s JOIN loyalty_rewards r"
                       " ON r.reward_id = s.reward_id WHERE s.reward_id = ? AND r.delivery = 'immediate'",
                       (request.reward_id,)).fetchone()
    if row is None:
        raise not_found("reward_unknown", "Premio desconocido o sin stock en la estación.",
                        "Unknown reward, or one without stock at the station.", field="reward_id")
    if conn.execute("SELECT 1 FROM loyalty_stock_movements WHERE kind = 'count' AND document = ?",
                    (request.document,)).fetchone():
        raise conflict("stock_document_already_booked", "Esa planilla de conteo ya fue registrada.",
                       "That count sheet was already booked.", field="document")
    expected = row["quantity"]
    difference = request.counted - expected
    conn.execute("UPDATE loyalty_reward_stock SET quantity = ? WHERE reward_id = ?", (request.counted, request.reward_id))
    movement_id = new_id()
    conn.execute(
        "INSERT INTO loyalty_stock_movements(movement_id, reward_id, kind, quantity, document, occurred_at, counted,"
        " expected, note) VALUES (?, ?, 'count', ?, ?, ?, ?, ?, ?)",
        (movement_id, request.reward_id, difference, request.document, iso(at), request.counted, expected,
         request.note))
    append_event(conn, "reward.stock_counted", {
        "movement_id": movement_id, "reward_id": request.reward_id, "expected": expected, "counted": request.counted,
        "difference": difference, "document": request.document, "note": request.note, "station": station,
        "at": iso(at)})
    return {"movement_id": movement_id, "reward_id": request.reward_id, "kind": "count", "expected": expected,
            "counted": request.counted, "difference": difference, "stock": request.counted}


def _movement(row: sqlite3.Row) -> dict[str, Any]:
    return {k: row[k] for k in ("movement_id", "reward_id", "kind", "quantity", "document", "occurred_at", "counted",
                                "expected", "note", "reference_id", "replenishment_id")} | {"reward_name": row["name"]}


def movements(conn: sqlite3.Connection, *, reward_id: str | None, kind: str | None, start: datetime | None,
              end: datetime | None, limit: int, cursor: str | None = None) -> dict[str, Any]:
    """Stock movements, newest first, filtered by reward, kind and time range; ``next_cursor``
    (keyset on time and id, so a movement booked meanwhile neither repeats nor hides one) pages on."""
    if kind is not None and kind not in MOVEMENT_KINDS:
        raise LoyaltyError("invalid_kind", f"Tipo de movimiento desconocido: use uno de {', '.join(MOVEMENT_KINDS)}.",
                           f"Unknown movement kind: use one of {', '.join(MOVEMENT_KINDS)}.", field="kind")
    after = decode_cursor(cursor) if cursor is not None else None
    where, args = [], []
    for clause, value in (("m.reward_id = ?", reward_id), ("m.kind = ?", kind),
                          ("m.occurred_at >= ?", iso(start) if start else None),
                          ("m.occurred_at < ?", iso(end) if end else None),
                          ("(m.occurred_at, m.movement_id) < (?, ?)", after)):
        if value is not None:
            where.append(clause)
            args.extend(value if isinstance(value, tuple) else (value,))
    sql = ("SELECT m.*, r.name FROM loyalty_stock_movements m JOIN loyalty_rewards r ON r.reward_id = m.reward_id"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY m.occurred_at DESC, m.movement_id DESC"
           " LIMIT ?")
    rows = conn.execute(sql, (*args, limit + 1)).fetchall()
    page, more = rows[:limit], len(rows) > limit
    last = page[-1] if page and more else None
    return {"items": [_movement(r) for r in page],
            "next_cursor": encode_cursor(last["occurred_at"], last["movement_id"]) if last is not None else None}


def redemption(conn: sqlite3.Connection, redemption_id: str) -> dict[str, Any]:
    """A redemption as answered when it was booked, with the reward's name and when it happened."""
    row = conn.execute("SELECT d.response, d.occurred_at, d.account_id, r.name FROM loyalty_redemptions d"
                       " JOIN loyalty_rewards r ON r.reward_id = d.reward_id WHERE d.redemption_id = ?",
                       (redemption_id,)).fetchone()
    if row is None:
        raise not_found("redemption_unknown", "Canje desconocido.", "Unknown redemption.", field="redemption_id")
    return json.loads(row["response"]) | {"reward_name": row["name"], "occurred_at": row["occurred_at"],
                                          "account_id": row["account_id"]}


def reward_request(conn: sqlite3.Connection, redemption_id: str, station: str) -> dict[str, Any]:
    """One pending scheduled request with its warehouse slip, or a 404."""
    for request in pending_requests(conn, station, redemption_id=redemption_id):
        return request
    raise not_found("reward_request_unknown", "No hay una solicitud de premio pendiente con ese número.",
                    "There is no pending reward request with that number.", field="redemption_id")


def pending_requests(conn: sqlite3.Connection, station: str, *, redemption_id: str | None = None) -> list[dict[str, Any]]:
    """Scheduled rewards redeemed here and not yet delivered, oldest first, each with its warehouse
    slip (the customer's current data: the outbox copy is pruned once head office confirms it)."""
    rows = conn.execute(
        "SELECT d.redemption_id, d.quantity, d.points, d.occurred_at, d.account_id, d.card_number, r.reward_id, r.name"
        " FROM loyalty_redemptions d JOIN loyalty_rewards r ON r.reward_id = d.reward_id"
        " WHERE d.status = 'requested' AND (? IS NULL OR d.redemption_id = ?) ORDER BY d.occurred_at, d.redemption_id",
        (redemption_id, redemption_id)).fetchall()
    return [{"redemption_id": r["redemption_id"], "reward_id": r["reward_id"], "quantity": r["quantity"],
             "points": r["points"], "requested_at": r["occurred_at"], "account_id": r["account_id"],
             "slip": slip_data(conn, redemption_id=r["redemption_id"], account_id=r["account_id"],
                               card_number=r["card_number"], reward=r, quantity=r["quantity"], points=r["points"],
                               station=station, at=r["occurred_at"])} for r in rows]


def open_replenishment(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Grants not yet consolidated into a replenishment, per reward (what the week's order must bring)."""
    rows = conn.execute(
        "SELECT m.reward_id, r.name, -SUM(m.quantity) AS quantity, COUNT(*) AS grants, MIN(m.occurred_at) AS since"
        " FROM loyalty_stock_movements m JOIN loyalty_rewards r ON r.reward_id = m.reward_id"
        " WHERE m.kind = 'grant' AND m.replenishment_id IS NULL GROUP BY m.reward_id ORDER BY m.reward_id").fetchall()
    return [{"reward_id": r["reward_id"], "reward_name": r["name"], "quantity": r["quantity"], "grants": r["grants"],
             "since": r["since"]} for r in rows]


def consolidate_replenishment(conn: sqlite3.Connection, *, station: str, at: datetime) -> dict[str, Any]:
    """Close the open replenishment record into one request for head office (seed 002: weekly)."""
    lines = open_replenishment(conn)
    if not lines:
        raise conflict("nothing_to_replenish", "No hay entregas de premios pendientes de reposición.",
                       "There are no reward grants waiting for replenishment.")
    replenishment_id = new_id()
    conn.execute("UPDATE loyalty_stock_movements SET replenishment_id = ? WHERE kind = 'grant'"
                 " AND replenishment_id IS NULL", (replenishment_id,))
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        totals[line["reward_id"]] += line["quantity"]
    body = [{"reward_id": k, "quantity": v} for k, v in sorted(totals.items())]
    conn.execute("INSERT INTO loyalty_replenishments(replenishment_id, created_at, lines) VALUES (?, ?, ?)",
                 (replenishment_id, iso(at), json.dumps(body)))
    append_event(conn, "reward.replenishment_requested", {
        "replenishment_id": replenishment_id, "lines": body, "station": station, "at": iso(at)})
    return {"replenishment_id": replenishment_id, "created_at": iso(at), "lines": lines}
