"""From a card to its customer and from a customer to their accounts and cards.

Seed 000 shows "the customer on the sale screen": the POS must get from whatever it has (a
card number typed or read, a customer found by document) to the rest.
"""
from __future__ import annotations

import sqlite3
from typing import Any

from .accounts import mask_card
from .errors import not_found


def card(conn: sqlite3.Connection, card_number: str) -> dict[str, Any]:
    """The card, its role and state, its account and the account's customer."""
    row = conn.execute(
        "SELECT c.card_number, c.role, c.state, c.account_id, c.issued_at, c.replaced_by, a.customer_id, a.tier_id,"
        " a.is_fleet FROM loyalty_cards c LEFT JOIN loyalty_accounts a ON a.account_id = c.account_id"
        " WHERE c.card_number = ?", (card_number,)).fetchone()
    if row is None:
        raise not_found("card_unknown", f"La tarjeta {mask_card(card_number)} no está en el directorio.",
                        f"Card {mask_card(card_number)} is not in the directory.", field="card_number")
    return {
        "card_number": row["card_number"], "card": mask_card(row["card_number"]), "role": row["role"],
        "state": row["state"], "blocked": row["state"] == "blocked", "account_id": row["account_id"],
        "customer_id": row["customer_id"], "tier_id": row["tier_id"],
        "is_fleet": bool(row["is_fleet"]) if row["account_id"] else None,
        "issued_at": row["issued_at"], "replaced_by": row["replaced_by"],
    }


def customer_accounts(conn: sqlite3.Connection, customer_id: str) -> list[dict[str, Any]]:
    """The customer's accounts (the first is the primary one sales by document earn on), with cards."""
    accounts = conn.execute(
        "SELECT account_id, tier_id, is_fleet, created_at FROM loyalty_accounts WHERE customer_id = ?"
        " ORDER BY created_at, account_id", (customer_id,)).fetchall()
    out = []
    for i, account in enumerate(accounts):
        cards = conn.execute("SELECT card_number, role, state FROM loyalty_cards WHERE account_id = ?"
                             " ORDER BY role, card_number", (account["account_id"],)).fetchall()
        out.append({
            "account_id": account["account_id"], "primary": i == 0, "tier_id": account["tier_id"],
            "is_fleet": bool(account["is_fleet"]),
            "cards": [{"card": mask_card(c["card_number"]), "role": c["role"], "state": c["state"],
                       "blocked": c["state"] == "blocked"} for c in cards],
        })
    return out
