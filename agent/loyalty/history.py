"""A customer's purchase history at this station, newest first, in pages.

Seed 000: customers get warranty service "without the receipt, found through their RUT", so
the POS looks the customer up by document and pages through their sales. Pages are keyed on
(occurred_at, sale_id) rather than an offset, so a sale booked while the attendant pages does
not shift or repeat rows.
"""
from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from typing import Any

from agent.errors import AgentError

from .accounts import mask_card
from .holders import CustomerKey, find_customer


def _bad_cursor() -> AgentError:
    return AgentError("invalid_cursor", "El cursor de paginación no es válido: pida la primera página de nuevo.",
                      "The paging cursor is not valid: ask for the first page again.", status=422, field="cursor")


def encode_cursor(occurred_at: str, sale_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([occurred_at, sale_id]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _bad_cursor() from None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise _bad_cursor()
    return value[0], value[1]


def customer_sales(conn: sqlite3.Connection, customer_id: str, *, limit: int, cursor: str | None) -> dict[str, Any]:
    find_customer(conn, CustomerKey(customer_id=customer_id))  # 404 naming it
    if cursor is None:
        rows = conn.execute(
            "SELECT * FROM loyalty_sales WHERE customer_id = ? ORDER BY occurred_at DESC, sale_id DESC LIMIT ?",
            (customer_id, limit + 1)).fetchall()
    else:
        at, sale_id = decode_cursor(cursor)
        rows = conn.execute(
            "SELECT * FROM loyalty_sales WHERE customer_id = ? AND (occurred_at, sale_id) < (?, ?)"
            " ORDER BY occurred_at DESC, sale_id DESC LIMIT ?", (customer_id, at, sale_id, limit + 1)).fetchall()
    page, more = rows[:limit], len(rows) > limit
    lines: dict[str, list[dict[str, Any]]] = {r["sale_id"]: [] for r in page}
    if page:
        marks = ",".join("?" * len(page))
        for line in conn.execute(f"SELECT * FROM loyalty_sale_lines WHERE sale_id IN ({marks}) ORDER BY line_no",
                                 list(lines)):
            lines[line["sale_id"]].append({
                "line_no": line["line_no"], "sku": line["sku"], "article_group": line["article_group"],
                "quantity": line["quantity"], "amount": line["amount"], "points": line["points"],
                "returned_amount": line["returned_amount"], "returned_quantity": line["returned_quantity"],
            })
    items = [{
        "sale_id": r["sale_id"], "occurred_at": r["occurred_at"],
        "receipt": {"station": r["station"], "pos": r["pos"], "number": r["number"]},
        "identified_by": r["identified_by"], "account_id": r["account_id"],
        "card": mask_card(r["card_number"]) if r["card_number"] else None,
        "total_amount": r["total_amount"], "points": r["points"], "reversed_points": r["reversed_points"],
        "voided": bool(r["voided"]), "lines": lines[r["sale_id"]],
    } for r in page]
    last = page[-1] if page and more else None
    return {"customer_id": customer_id, "items": items,
            "next_cursor": encode_cursor(last["occurred_at"], last["sale_id"]) if last is not None else None}
