"""Rewards: catalog, station stock (atomic, never negative), redemption and stock movements.

Immediate-delivery rewards come out of the station's own stock in the same transaction as the
points; scheduled-delivery rewards create a request event that head office consolidates weekly.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from agent.clock import iso
from agent.customers.service import display_name
from agent.ids import new_id
from agent.store.outbox import append_event

from .accounts import CardView, mask_card
from .errors import LoyaltyError, conflict, not_found
from .ledger import balance, record_movement
from .requests import RedeemRequest, StockMovementRequest


def catalog(conn: sqlite3.Connection) -> list[dict]:
    rows = conn.execute(
        "SELECT r.reward_id, r.name, r.points_cost, r.delivery, COALESCE(s.quantity, 0) AS stock,"
        " COALESCE(s.low_threshold, 0) AS low_threshold FROM loyalty_rewards r"
        " LEFT JOIN loyalty_reward_stock s ON s.reward_id = r.reward_id WHERE r.active = 1 ORDER BY r.reward_id"
    ).fetchall()
    return [dict(r) | {"low_stock": r["delivery"] == "immediate" and r["stock"] <= r["low_threshold"]} for r in rows]


def _reward(conn: sqlite3.Connection, reward_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM loyalty_rewards WHERE reward_id = ? AND active = 1", (reward_id,)).fetchone()
    if row is None:
        raise not_found("reward_unknown", "Premio desconocido o fuera de catálogo.",
                        "Unknown or inactive reward.", field="reward_id")
    return row


def _take_stock(conn: sqlite3.Connection, reward_id: str, quantity: int, station: str, at: datetime,
                reference_id: str) -> int:
    """Decrement stock atomically; raise if not enough. Returns the quantity left."""
    row = conn.execute(
        "UPDATE loyalty_reward_stock SET quantity = quantity - ? WHERE reward_id = ? AND quantity >= ?"
        " RETURNING quantity, low_threshold",
        (quantity, reward_id, quantity),
    ).fetchone()
    if row is None:
        raise conflict("out_of_stock", "No hay stock suficiente de este premio en la estación.",
                       "Not enough stock of this reward at the station.", field="reward_id")
    left, threshold = row["quantity"], row["low_threshold"]
    movement_id = new_id()
    conn.execute(
        "INSERT INTO loyalty_stock_movements(movement_id, reward_id, kind, quantity, document, occurred_at,"
        " reference_id) VALUES (?, ?, 'grant', ?, NULL, ?, ?)",
        (movement_id, reward_id, -quantity, iso(at), reference_id),
    )
    append_event(conn, "reward.stock_movement", {
        "movement_id": movement_id, "reward_id": reward_id, "kind": "grant", "quantity": -quantity,
        "stock_after": left, "redemption_id": reference_id, "station": station, "at": iso(at),
    })
    # Alert once, when this grant crosses the threshold, not on every later grant.
    if left <= threshold < left + quantity:
        append_event(conn, "reward.stock_low", {
            "reward_id": reward_id, "stock": left, "threshold": threshold, "station": station, "at": iso(at),
        })
    return left


def redeem(
    conn: sqlite3.Connection,
    *,
    request: RedeemRequest,
    card: CardView,
    attendant_id: str,
    station: str,
    at: datetime,
    fingerprint: str,
) -> dict:
    if card.is_vehicle:
        raise LoyaltyError(
            "fleet_card_cannot_redeem",
            "Las tarjetas de vehículo de una flota no pueden canjear premios; solo el titular de la flota.",
            "Fleet vehicle cards cannot redeem rewards; only the fleet owner can.",
            status=403, field="session_id",
        )
    reward = _reward(conn, request.reward_id)
    points = reward["points_cost"] * request.quantity
    current = balance(conn, card.account_id)
    assert current is not None
    if current.points < points:
        raise LoyaltyError(
            "insufficient_points",
            f"Saldo insuficiente: el premio requiere {points} puntos y la cuenta tiene {current.points}.",
            f"Insufficient balance: the reward needs {points} points and the account has {current.points}.",
            field="reward_id",
        )
    redemption_id = new_id()
    delivered = reward["delivery"] == "immediate"
    stock_left = _take_stock(conn, reward["reward_id"], request.quantity, station, at, redemption_id) if delivered else None
    movement = record_movement(
        conn, account_id=card.account_id, card_number=card.card_number, kind="redeem", points=-points,
        station=station, at=at, reference_id=redemption_id,
    )
    payload = {
        "movement_id": movement.movement_id, "ledger_seq": movement.seq, "redemption_id": redemption_id,
        "account_id": card.account_id, "card_number": card.card_number, "attendant_id": attendant_id,
        "reward_id": reward["reward_id"], "quantity": request.quantity, "points": -points,
        "delivery": reward["delivery"], "station": station, "occurred_at": iso(at),
    }
    append_event(conn, "points.redeemed", payload)
    if not delivered:
        _queue_request(conn, payload, reward)
    status = "delivered" if delivered else "requested"
    response = {
        "redemption_id": redemption_id, "movement_id": movement.movement_id, "reward_id": reward["reward_id"],
        "quantity": request.quantity, "points": -points, "delivery": reward["delivery"], "status": status,
        "card": mask_card(card.card_number), "balance_after": current.points - points, "stock_left": stock_left,
    }
    conn.execute(
        "INSERT INTO loyalty_redemptions(redemption_id, idempotency_key, fingerprint, account_id, card_number,"
        " session_id, reward_id, quantity, points, delivery, status, occurred_at, response)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (redemption_id, None, fingerprint, card.account_id, card.card_number, request.session_id,
         reward["reward_id"], request.quantity, points, reward["delivery"], status, iso(at), json.dumps(response)),
    )
    return response


def receive_stock(conn: sqlite3.Connection, *, request: StockMovementRequest, station: str, at: datetime) -> dict:
    """Stock in (receipt, consignment transfer in, shipment receipt) or out (transfer out); the
    document is unique per kind. Stock never goes below zero (409 ``out_of_stock``)."""
    reward = _reward(conn, request.reward_id)
    if reward["delivery"] != "immediate":
        raise LoyaltyError("reward_not_stocked", "Los premios de entrega programada no tienen stock en la estación.",
                           "Scheduled-delivery rewards have no stock at the station.", field="reward_id")
    if conn.execute("SELECT 1 FROM loyalty_stock_movements WHERE kind = ? AND document = ?",
                    (request.kind, request.document)).fetchone():
        raise conflict("stock_document_already_booked", "Ese comprobante de stock ya fue registrado.",
                       "That stock document was already booked.", field="document")
    change = -request.quantity if request.kind == "transfer_out" else request.quantity
    conn.execute("INSERT INTO loyalty_reward_stock(reward_id, quantity) VALUES (?, 0) ON CONFLICT(reward_id) DO NOTHING",
                 (request.reward_id,))
    row = conn.execute(
        "UPDATE loyalty_reward_stock SET quantity = quantity + ? WHERE reward_id = ? AND quantity + ? >= 0"
        " RETURNING quantity", (change, request.reward_id, change)).fetchone()
    if row is None:
        raise conflict("out_of_stock", "No hay stock suficiente de este premio para transferir.",
                       "Not enough stock of this reward to transfer.", field="quantity")
    movement_id = new_id()
    conn.execute(
        "INSERT INTO loyalty_stock_movements(movement_id, reward_id, kind, quantity, document, occurred_at, note)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (movement_id, request.reward_id, request.kind, change, request.document, iso(at), request.note),
    )
    append_event(conn, "reward.stock_movement", {
        "movement_id": movement_id, "reward_id": request.reward_id, "kind": request.kind,
        "quantity": change, "stock_after": row["quantity"], "document": request.document, "note": request.note,
        "station": station, "at": iso(at),
    })
    return {"movement_id": movement_id, "reward_id": request.reward_id, "kind": request.kind,
            "quantity": change, "stock": row["quantity"]}


def _queue_request(conn: sqlite3.Connection, payload: dict, reward: sqlite3.Row) -> None:
    """Head office consolidates requests into the weekly order (seed 002: "todos los lunes"); the
    warehouse gets a slip with the customer's data to deliver it."""
    append_event(conn, "reward.requested", payload | {"slip": slip_data(
        conn, redemption_id=payload["redemption_id"], account_id=payload["account_id"],
        card_number=payload["card_number"], reward=reward, quantity=payload["quantity"], points=-payload["points"],
        station=payload["station"], at=payload["occurred_at"])})


def slip_data(conn: sqlite3.Connection, *, redemption_id: str, account_id: str, card_number: str,
              reward: sqlite3.Row, quantity: int, points: int, station: str, at: str) -> dict:
    """What the warehouse slip of a scheduled reward needs (seed 002: "los datos del cliente")."""
    owner = conn.execute(
        "SELECT c.id, c.data FROM loyalty_accounts a JOIN customers c ON c.id = a.customer_id"
        " WHERE a.account_id = ?", (account_id,)).fetchone()
    customer = None
    if owner is not None:
        data = json.loads(owner["data"])
        document = data["document"]
        customer = {
            "customer_id": owner["id"], "name": display_name(data),
            "document": f"{document['country']} {document['type']} {document['display']}",
            "phones": [p["number"] for p in data.get("phones") or []], "email": data.get("email"),
            "address": data.get("address"),
        }
    return {"redemption_id": redemption_id, "station": station, "requested_at": at, "reward_id": reward["reward_id"],
            "reward_name": reward["name"], "quantity": quantity, "points": points, "account_id": account_id,
            "card": mask_card(card_number), "customer": customer}
