"""The customer on the sale screen: one display-summary shape for every way the POS finds them.

Seed 000 shows the customer on the sale screen and asks, each time, to ratify the offers
opt-in and the LATAM Pass membership. Document lookup, swipe view and account view all
return this same ``display`` object, so a POS renders one widget whichever way it got there.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from agent.customers.service import display_name

from . import directory, ledger
from .accounts import mask_card
from .holders import customer_account, program_key

MASKED = "masked"


def _consents_to_ratify(data: dict[str, Any], partner_program: str) -> list[dict[str, Any]]:
    """The opt-ins seed 000 asks the attendant to ratify at every visit, with what is on record."""
    consents = data.get("consents") or {}
    offers = consents.get("offers") or {}
    partner = next((p for p in consents.get("partner_programs", [])
                    if program_key(p.get("name", "")) == program_key(partner_program)), {})
    return [
        {"consent": "offers", "value": offers.get("value"), "recorded_at": offers.get("at"),
         "channel": offers.get("channel")},
        {"consent": "partner_program", "program": partner.get("name", partner_program), "value": partner.get("value"),
         "member_id": partner.get("member_id"), "recorded_at": partner.get("at"), "channel": partner.get("channel")},
    ]


def display_summary(conn: sqlite3.Connection, *, customer_id: str | None, account_id: str | None,
                    card_number: str | None, masked: bool, partner_program: str, now: datetime) -> dict[str, Any]:
    """What the POS shows for the holder. Missing parts are ``None`` (a card known only from head
    office has no local customer; a customer who never earned here has no account yet)."""
    data: dict[str, Any] = {}
    if customer_id is not None:
        row = conn.execute("SELECT data FROM customers WHERE id = ?", (customer_id,)).fetchone()
        data = json.loads(row["data"]) if row is not None else {}
        if account_id is None:
            account = customer_account(conn, customer_id)
            account_id = account["account_id"] if account is not None else None
    tier_id = tier_name = None
    bal = None
    if account_id is not None:
        tier = conn.execute("SELECT a.tier_id, t.name FROM loyalty_accounts a LEFT JOIN loyalty_tiers t"
                            " ON t.tier_id = a.tier_id WHERE a.account_id = ?", (account_id,)).fetchone()
        if tier is not None:
            tier_id, tier_name = tier["tier_id"], tier["name"]
        bal = ledger.balance(conn, account_id)
    document = data.get("document")
    return {
        "customer_id": customer_id if data else None,
        "display_name": display_name(data) if data else None,
        "document": f"{document['type']} {document['display']}" if document else None,
        "document_country": document["country"] if document else None,
        "account_id": account_id,
        "card": mask_card(card_number) if card_number else None,
        "tier": tier_name or tier_id,
        "balance": MASKED if masked else (bal.as_dict() if bal is not None else None),
        "balance_masked": masked,
        "consents_to_ratify": _consents_to_ratify(data, partner_program) if data else [],
        "messages": directory.messages_for(conn, card_number or "", account_id, tier_id, now),
    }
