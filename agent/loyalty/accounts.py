"""Accounts and cards at the station: issue, block, replace; every state change is an event.

Card life: unassigned -> issued -> blocked -> replaced (by a new card on the same account, so
the balance, which belongs to the account, is kept). An account has one primary card and up
to two additional cards pooling points; a fleet account has vehicle cards that earn for the
owner's account but can never redeem nor see the balance.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from agent.clock import iso
from agent.ids import new_id
from agent.store.outbox import append_event

from .errors import LoyaltyError, conflict, not_found

MAX_ADDITIONAL_CARDS = 2


def mask_card(card_number: str) -> str:
    """Show only the last four characters.

    >>> mask_card("6037990012345678")
    '************5678'
    """
    return "*" * max(0, len(card_number) - 4) + card_number[-4:]


@dataclass(frozen=True)
class CardView:
    card_number: str
    account_id: str
    role: str
    state: str
    issued_at: datetime | None
    first_used_at: datetime | None
    tier_id: str | None
    tier_name: str | None
    tier_multiplier: Decimal
    is_fleet: bool
    partner_member_id: str | None

    @property
    def is_vehicle(self) -> bool:
        return self.role == "vehicle"


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def card_view(conn: sqlite3.Connection, card_number: str) -> CardView:
    """The issued card with its account and tier, or a clear error."""
    row = conn.execute(
        "SELECT c.card_number, c.account_id, c.role, c.state, c.issued_at, c.first_used_at, a.tier_id,"
        " t.name AS tier_name, t.multiplier, a.is_fleet, a.partner_member_id"
        " FROM loyalty_cards c LEFT JOIN loyalty_accounts a ON a.account_id = c.account_id"
        " LEFT JOIN loyalty_tiers t ON t.tier_id = a.tier_id WHERE c.card_number = ?",
        (card_number,),
    ).fetchone()
    if row is None:
        raise not_found("card_unknown", "Tarjeta desconocida.", "Unknown card.", field="card_number")
    if row["state"] != "issued":
        raise LoyaltyError(
            f"card_{row['state']}",
            {"unassigned": "La tarjeta no está asignada a ningún cliente.",
             "blocked": "La tarjeta está bloqueada.",
             "replaced": "La tarjeta fue reemplazada por otra."}[row["state"]],
            {"unassigned": "The card is not assigned to any customer.",
             "blocked": "The card is blocked.",
             "replaced": "The card was replaced by another one."}[row["state"]],
            status=409,
            field="card_number",
        )
    return CardView(
        card_number=row["card_number"],
        account_id=row["account_id"],
        role=row["role"],
        state=row["state"],
        issued_at=_dt(row["issued_at"]),
        first_used_at=_dt(row["first_used_at"]),
        tier_id=row["tier_id"],
        tier_name=row["tier_name"],
        tier_multiplier=Decimal(row["multiplier"]) if row["multiplier"] else Decimal(1),
        is_fleet=bool(row["is_fleet"]),
        partner_member_id=row["partner_member_id"],
    )


def _require_unassigned(conn: sqlite3.Connection, card_number: str) -> None:
    row = conn.execute("SELECT state FROM loyalty_cards WHERE card_number = ?", (card_number,)).fetchone()
    # A card absent from the directory is new stock delivered to the station: unassigned.
    if row is not None and row["state"] != "unassigned":
        raise conflict(
            "card_not_unassigned",
            "La tarjeta ya fue entregada a un cliente.",
            "The card has already been issued to a customer.",
            field="card_number",
        )


def issue_card(
    conn: sqlite3.Connection,
    *,
    card_number: str,
    station: str,
    at: datetime,
    account_id: str | None = None,
    role: Literal["primary", "additional", "vehicle"] = "primary",
    new_account_tier: str | None = None,
    is_fleet: bool = False,
    customer_id: str | None = None,
    partner_member_id: str | None = None,
) -> dict[str, object]:
    """Issue an unassigned card: as the primary card of a new account (``account_id`` None) or
    as an additional / vehicle card of an existing account. The customer earns from now on."""
    # Long on purpose: one transaction's checks and writes in order (twelve lines are the
    # keyword signature); split up, the order the checks depend on would be harder to see.
    _require_unassigned(conn, card_number)
    now = iso(at)
    if account_id is None:
        if role != "primary":
            raise LoyaltyError("role_needs_account", "Una tarjeta adicional necesita la cuenta titular.",
                               "An additional card needs the holder's account.", field="account_id")
        if new_account_tier is not None and conn.execute(
            "SELECT 1 FROM loyalty_tiers WHERE tier_id = ?", (new_account_tier,)
        ).fetchone() is None:
            raise not_found("tier_unknown", "Categoría desconocida.", "Unknown tier.", field="tier_id")
        account_id = new_id()
        conn.execute(
            "INSERT INTO loyalty_accounts(account_id, customer_id, tier_id, is_fleet, partner_member_id, origin,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'local', ?, ?)",
            (account_id, customer_id, new_account_tier, int(is_fleet), partner_member_id, now, now),
        )
        append_event(conn, "account.created", {
            "account_id": account_id, "customer_id": customer_id, "tier_id": new_account_tier,
            "is_fleet": is_fleet, "partner_member_id": partner_member_id, "station": station, "at": now,
        })
    else:
        account = conn.execute("SELECT is_fleet FROM loyalty_accounts WHERE account_id = ?", (account_id,)).fetchone()
        if account is None:
            raise not_found("account_unknown", "Cuenta desconocida.", "Unknown account.", field="account_id")
        if role == "primary" and conn.execute(
            "SELECT 1 FROM loyalty_cards WHERE account_id = ? AND role = 'primary' AND state IN ('issued', 'blocked')",
            (account_id,),
        ).fetchone() is not None:
            # An account opened by a sale by document has no card yet: its first card is the primary.
            raise conflict("account_has_primary", "La cuenta ya tiene tarjeta titular.",
                           "The account already has a primary card.", field="role")
        if role == "vehicle" and not account["is_fleet"]:
            raise LoyaltyError("not_a_fleet_account", "Solo las cuentas de flota tienen tarjetas de vehículo.",
                               "Only fleet accounts have vehicle cards.", field="role")
        if role == "additional":
            count = conn.execute(
                "SELECT COUNT(*) FROM loyalty_cards WHERE account_id = ? AND role = 'additional'"
                " AND state IN ('issued', 'blocked')",
                (account_id,),
            ).fetchone()[0]
            if count >= MAX_ADDITIONAL_CARDS:
                raise conflict("too_many_additional_cards",
                               f"La cuenta ya tiene {MAX_ADDITIONAL_CARDS} tarjetas adicionales.",
                               f"The account already has {MAX_ADDITIONAL_CARDS} additional cards.",
                               field="role")
    conn.execute(
        "INSERT INTO loyalty_cards(card_number, account_id, role, state, issued_at, updated_at)"
        " VALUES (?, ?, ?, 'issued', ?, ?) ON CONFLICT(card_number) DO UPDATE SET account_id = excluded.account_id,"
        " role = excluded.role, state = 'issued', issued_at = excluded.issued_at, updated_at = excluded.updated_at",
        (card_number, account_id, role, now, now),
    )
    append_event(conn, "card.issued", {
        "card_number": card_number, "account_id": account_id, "role": role, "station": station, "at": now,
    })
    return {"card_number": card_number, "account_id": account_id, "role": role, "state": "issued", "issued_at": now}


def block_card(conn: sqlite3.Connection, *, card_number: str, reason: str, station: str, at: datetime) -> dict:
    row = conn.execute("SELECT state, account_id FROM loyalty_cards WHERE card_number = ?", (card_number,)).fetchone()
    if row is None:
        raise not_found("card_unknown", "Tarjeta desconocida.", "Unknown card.", field="card_number")
    if row["state"] != "issued":
        raise conflict("card_not_issued", "Solo se puede bloquear una tarjeta activa.",
                       "Only an active card can be blocked.", field="card_number")
    now = iso(at)
    conn.execute("UPDATE loyalty_cards SET state = 'blocked', updated_at = ? WHERE card_number = ?", (now, card_number))
    # security: a lost or stolen card is blocked even when the sync queue is full.
    append_event(conn, "card.blocked", {
        "card_number": card_number, "account_id": row["account_id"], "reason": reason, "station": station, "at": now,
    }, security=True)
    return {"card_number": card_number, "account_id": row["account_id"], "state": "blocked"}


def replace_card(
    conn: sqlite3.Connection, *, old_card: str, new_card: str, reason: str, station: str, at: datetime
) -> dict:
    """Move a lost or damaged card's account and role to a new card; the balance stays with the account."""
    old = conn.execute("SELECT * FROM loyalty_cards WHERE card_number = ?", (old_card,)).fetchone()
    if old is None:
        raise not_found("card_unknown", "Tarjeta desconocida.", "Unknown card.", field="old_card")
    if old["state"] not in ("issued", "blocked"):
        raise conflict("card_not_replaceable", "La tarjeta no se puede reemplazar en su estado actual.",
                       "The card cannot be replaced in its current state.", field="old_card")
    if old_card == new_card:
        raise LoyaltyError("same_card", "La tarjeta nueva debe ser distinta.", "The new card must be different.",
                           field="new_card")
    _require_unassigned(conn, new_card)
    now = iso(at)
    conn.execute(
        "UPDATE loyalty_cards SET state = 'replaced', replaced_by = ?, updated_at = ? WHERE card_number = ?",
        (new_card, now, old_card),
    )
    # The replacement inherits issue and first-use dates: a lost card is not a new customer,
    # so it must not earn the first-use bonus again.
    conn.execute(
        "INSERT INTO loyalty_cards(card_number, account_id, role, state, issued_at, first_used_at, updated_at)"
        " VALUES (?, ?, ?, 'issued', ?, ?, ?) ON CONFLICT(card_number) DO UPDATE SET"
        " account_id = excluded.account_id, role = excluded.role, state = 'issued',"
        " issued_at = excluded.issued_at, first_used_at = excluded.first_used_at, updated_at = excluded.updated_at",
        (new_card, old["account_id"], old["role"], old["issued_at"], old["first_used_at"] or now, now),
    )
    append_event(conn, "card.replaced", {
        "old_card": old_card, "new_card": new_card, "account_id": old["account_id"], "role": old["role"],
        "reason": reason, "station": station, "at": now,
    })
    return {"old_card": old_card, "new_card": new_card, "account_id": old["account_id"], "state": "issued"}
