"""What the POS reads about a holder: the sale screen's summary, accounts, movements, cards,
purchase history. Read transactions only (they never hit the sync-queue budget).

A mixin of ``LoyaltyService`` (it uses the service's ``db``, ``sessions``, ``settings``,
``clock`` and ``rules``), kept apart so bookings and views each stay readable.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from . import accounts, history, ledger, navigation
from .config import LoyaltySettings
from .errors import LoyaltyError, not_found
from .sessions import LOCAL_POS
from .summary import MASKED, display_summary

if TYPE_CHECKING:
    from agent.store.db import Database

    from .rules import CompiledRules
    from .sessions import SwipeSessionAuthority


class LoyaltyViews:
    db: "Database"
    sessions: "SwipeSessionAuthority"
    settings: LoyaltySettings
    clock: Callable[[], datetime]
    rules: Callable[[], "CompiledRules"]

    def _display(self, conn: sqlite3.Connection, *, customer_id: str | None, account_id: str | None,
                 card_number: str | None, masked: bool = False) -> dict[str, Any]:
        return display_summary(conn, customer_id=customer_id, account_id=account_id, card_number=card_number,
                               masked=masked, partner_program=self.settings.partner.program, now=self.clock())

    def _owner(self, conn: sqlite3.Connection, account_id: str) -> str | None:
        row = conn.execute("SELECT customer_id FROM loyalty_accounts WHERE account_id = ?", (account_id,)).fetchone()
        return row["customer_id"] if row is not None else None

    def _with_account_view(self, answer: dict) -> dict:
        """Add the current balance (masked for fleet vehicle cards) and the customer's messages."""
        def read(conn: sqlite3.Connection) -> dict:
            row = conn.execute("SELECT card_number, account_id FROM loyalty_sales WHERE sale_id = ?",
                               (answer["sale_id"],)).fetchone()
            return self._card_summary(conn, row["card_number"] or None, row["account_id"])

        return answer | self.db.read(read)

    def _card_summary(self, conn: sqlite3.Connection, card_number: str | None, account_id: str) -> dict:
        """Balance (masked when seen through a fleet vehicle card) and messages for the holder."""
        role = None
        if card_number is not None:
            card = conn.execute("SELECT role FROM loyalty_cards WHERE card_number = ?", (card_number,)).fetchone()
            role = card["role"] if card is not None else None
        display = self._display(conn, customer_id=self._owner(conn, account_id), account_id=account_id,
                                card_number=card_number, masked=role == "vehicle")
        return {"balance": display["balance"], "balance_masked": display["balance_masked"],
                "messages": display["messages"], "display": display}

    def swipe_info(self, session_id: str, pos: str = LOCAL_POS) -> dict:
        """What the POS shows when a card is swiped: account, tier, balance (or masked), messages."""
        swipe = self.sessions.require_authorized_session(session_id, pos)

        def read(conn: sqlite3.Connection) -> dict:
            card = accounts.card_view(conn, swipe.card_id)
            return {"account_id": card.account_id, "card": accounts.mask_card(card.card_number), "role": card.role,
                    "tier": card.tier_name or card.tier_id} | self._card_summary(conn, card.card_number,
                                                                                 card.account_id)

        return self.db.read(read)

    def customer_display(self, customer_id: str) -> dict:
        """The sale-screen summary of a customer found by document (their primary account's balance)."""
        return self.db.read(lambda c: self._display(c, customer_id=customer_id, account_id=None, card_number=None))

    def customer_accounts(self, customer_id: str) -> list[dict]:
        return self.db.read(lambda c: navigation.customer_accounts(c, customer_id))

    def card(self, card_number: str) -> dict:
        """A card by number (typed or read): role, state, account and customer, and the summary."""
        def read(conn: sqlite3.Connection) -> dict:
            found = navigation.card(conn, card_number)
            display = self._display(conn, customer_id=found["customer_id"], account_id=found["account_id"],
                                    card_number=card_number, masked=found["role"] == "vehicle")
            return found | {"display": display}

        return self.db.read(read)

    def customer_sales(self, customer_id: str, *, limit: int = 20, cursor: str | None = None) -> dict:
        """The customer's purchase history, newest first (``next_cursor`` pages on)."""
        return self.db.read(lambda c: history.customer_sales(c, customer_id, limit=limit, cursor=cursor))

    def _viewer_is_vehicle(self, conn: sqlite3.Connection, account_id: str, session_id: str | None,
                           pos: str) -> bool:
        if session_id is None:
            return False
        swipe = self.sessions.require_authorized_session(session_id, pos)
        row = conn.execute("SELECT role, account_id FROM loyalty_cards WHERE card_number = ?",
                           (swipe.card_id,)).fetchone()
        if row is None or row["account_id"] != account_id:
            raise LoyaltyError("session_other_account", "La tarjeta pasada no pertenece a esta cuenta.",
                               "The swiped card does not belong to this account.", status=403, field="session_id")
        return row["role"] == "vehicle"

    def account(self, account_id: str, session_id: str | None = None, pos: str = LOCAL_POS) -> dict:
        """Balance of an account; masked when asked through a fleet vehicle card's session."""
        def read(conn: sqlite3.Connection) -> dict:
            bal = ledger.balance(conn, account_id)
            if bal is None:
                raise not_found("account_unknown", "Cuenta desconocida.", "Unknown account.", field="account_id")
            row = conn.execute("SELECT tier_id, is_fleet, customer_id FROM loyalty_accounts WHERE account_id = ?",
                               (account_id,)).fetchone()
            cards = conn.execute("SELECT card_number, role, state FROM loyalty_cards WHERE account_id = ?"
                                 " ORDER BY role, card_number", (account_id,)).fetchall()
            masked = self._viewer_is_vehicle(conn, account_id, session_id, pos)
            return {
                "account_id": account_id, "customer_id": row["customer_id"], "tier_id": row["tier_id"],
                "is_fleet": bool(row["is_fleet"]),
                "balance": MASKED if masked else bal.as_dict(), "balance_masked": masked,
                "cards": [{"card": accounts.mask_card(c["card_number"]), "role": c["role"], "state": c["state"]}
                          for c in cards],
                "display": self._display(conn, customer_id=row["customer_id"], account_id=account_id,
                                         card_number=None, masked=masked),
            }

        return self.db.read(read)

    def movements(self, account_id: str, session_id: str | None = None, pos: str = LOCAL_POS) -> dict:
        zone = ZoneInfo(self.rules().program.timezone)

        def read(conn: sqlite3.Connection) -> dict:
            if conn.execute("SELECT 1 FROM loyalty_accounts WHERE account_id = ?", (account_id,)).fetchone() is None:
                raise not_found("account_unknown", "Cuenta desconocida.", "Unknown account.", field="account_id")
            if self._viewer_is_vehicle(conn, account_id, session_id, pos):
                raise LoyaltyError("fleet_card_cannot_view", "Las tarjetas de vehículo no pueden ver los puntos.",
                                   "Fleet vehicle cards cannot see the points.", status=403, field="session_id")
            return {"account_id": account_id, "timezone": zone.key,
                    "movements": ledger.last_movements(conn, account_id, zone)}

        return self.db.read(read)
