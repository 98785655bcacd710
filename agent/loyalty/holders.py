"""Who earns on a sale: the account behind a swiped card, or behind a customer's document.

Seeds 000 and 003 identify the customer by document at every sale (the RUT in IRS POS, the
cédula "before every transaction"), not by card. A customer has one account at the station
(the "primary" one): the account their cards belong to, or, when they earn before any card
is issued, an account opened for them on that first sale. Later cards join that account.

Functions taking a connection run inside the caller's transaction.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from agent.clock import iso
from agent.customers.documents import DocumentError, identity_type, validate_document
from agent.errors import AgentError, ValidationProblems
from agent.ids import new_id
from agent.store.outbox import append_event

from .accounts import CardView
from .errors import LoyaltyError, conflict
from .requests import CustomerDocument

IdentifiedBy = Literal["card", "document", "customer_id"]


@dataclass(frozen=True)
class CustomerKey:
    """A customer named by the POS: by document (already validated) or by id."""

    customer_id: str | None = None
    country: str | None = None
    doc_type: str | None = None
    number: str | None = None
    display: str | None = None

    @property
    def identified_by(self) -> IdentifiedBy:
        return "customer_id" if self.customer_id is not None else "document"


@dataclass(frozen=True)
class Earner:
    """The account that earns, with what the rules need (tier, card dates) and the partner member."""

    account_id: str | None  # None only in a simulation for a customer who never earned yet
    card_number: str | None
    customer_id: str | None
    identified_by: IdentifiedBy
    tier_id: str | None = None
    tier_name: str | None = None
    tier_multiplier: Decimal = Decimal(1)
    card_issued_at: datetime | None = None
    card_first_used_at: datetime | None = None
    partner_member_id: str | None = None


def customer_key(document: CustomerDocument | None, customer_id: str | None, field: str = "customer") -> CustomerKey | None:
    """Validate the document the POS typed (422 naming the field), before any database work."""
    if customer_id is not None:
        return CustomerKey(customer_id=customer_id)
    if document is None:
        return None
    try:
        doc = validate_document(document.document_country, document.document_type, document.document_number)
    except DocumentError as exc:
        problems = ValidationProblems()
        problems.add(f"{field}.{exc.field.replace('document.', 'document_')}", exc.code, exc.es, exc.en)
        problems.raise_if_any()
        raise  # unreachable: raise_if_any raised
    return CustomerKey(country=doc.country, doc_type=identity_type(doc.country, doc.type), number=doc.number,
                       display=f"{doc.country} {doc.type} {doc.display}")


def find_customer(conn: sqlite3.Connection, key: CustomerKey) -> str:
    """The customer's id, or a 404 that names the document or id the POS sent."""
    if key.customer_id is not None:
        row = conn.execute("SELECT id FROM customers WHERE id = ?", (key.customer_id,)).fetchone()
        if row is None:
            raise AgentError("customer_not_found", f"No existe el cliente {key.customer_id}.",
                             f"There is no customer {key.customer_id}.", status=404, field="customer_id")
        return str(row["id"])
    row = conn.execute("SELECT id FROM customers WHERE doc_country = ? AND doc_type = ? AND doc_number = ?",
                       (key.country, key.doc_type, key.number)).fetchone()
    if row is None:
        raise AgentError("customer_not_found", f"No hay un cliente inscrito con el documento {key.display}.",
                         f"No customer is enrolled with document {key.display}.", status=404, field="customer")
    return str(row["id"])


_ACCOUNT = (
    "SELECT a.account_id, a.tier_id, t.name AS tier_name, t.multiplier, a.partner_member_id"
    " FROM loyalty_accounts a LEFT JOIN loyalty_tiers t ON t.tier_id = a.tier_id"
)


def customer_account(conn: sqlite3.Connection, customer_id: str) -> sqlite3.Row | None:
    """The customer's primary account: their oldest (stations that issued a second account
    before this rule existed keep earning on the first one, deterministically)."""
    return conn.execute(_ACCOUNT + " WHERE a.customer_id = ? ORDER BY a.created_at, a.account_id LIMIT 1",
                        (customer_id,)).fetchone()


def partner_member(conn: sqlite3.Connection, customer_id: str | None, program: str, fallback: str | None) -> str | None:
    """The partner-program member number to accrue miles to (seed 000: LATAM Pass).

    The customer's recorded consent decides: opted in with a member number -> that number;
    opted out -> none, even if the account carries an older number. A customer without a
    record for the program (or an account known only from head office) keeps the account's.
    """
    if customer_id is None:
        return fallback
    row = conn.execute("SELECT data FROM customers WHERE id = ?", (customer_id,)).fetchone()
    if row is None:
        return fallback
    wanted = program_key(program)
    for entry in json.loads(row["data"]).get("consents", {}).get("partner_programs", []):
        if program_key(entry.get("name", "")) == wanted:
            return str(entry["member_id"]) if entry.get("value") and entry.get("member_id") else None
    return fallback


def program_key(name: str) -> str:
    """'LATAM Pass', 'latam_pass' and 'LATAM-PASS' name the same program.

    >>> program_key("LATAM Pass") == program_key("LATAM_PASS")
    True
    """
    return "".join(ch for ch in name.casefold() if ch.isalnum())


def earner_for_card(conn: sqlite3.Connection, card: CardView, customer_id: str | None, program: str) -> Earner:
    """A swiped card earns for its account; a named customer must be that account's (409)."""
    owner = conn.execute("SELECT customer_id FROM loyalty_accounts WHERE account_id = ?",
                         (card.account_id,)).fetchone()
    owner_id = owner["customer_id"] if owner is not None else None
    if customer_id is not None and owner_id != customer_id:
        raise conflict("card_customer_mismatch",
                       "La tarjeta pasada no pertenece al cliente indicado: confirme el documento o la tarjeta.",
                       "The swiped card does not belong to the customer given: check the document or the card.",
                       field="customer")
    return Earner(
        account_id=card.account_id, card_number=card.card_number, customer_id=owner_id, identified_by="card",
        tier_id=card.tier_id, tier_name=card.tier_name, tier_multiplier=card.tier_multiplier,
        card_issued_at=card.issued_at, card_first_used_at=card.first_used_at,
        partner_member_id=partner_member(conn, owner_id, program, card.partner_member_id),
    )


def earner_for_customer(conn: sqlite3.Connection, customer_id: str, identified_by: IdentifiedBy,
                        program: str) -> Earner:
    """The customer's account as it is now (``account_id`` None if they never earned here)."""
    row = customer_account(conn, customer_id)
    if row is None:
        return Earner(account_id=None, card_number=None, customer_id=customer_id, identified_by=identified_by,
                      partner_member_id=partner_member(conn, customer_id, program, None))
    return Earner(
        account_id=row["account_id"], card_number=None, customer_id=customer_id, identified_by=identified_by,
        tier_id=row["tier_id"], tier_name=row["tier_name"],
        tier_multiplier=Decimal(row["multiplier"]) if row["multiplier"] else Decimal(1),
        partner_member_id=partner_member(conn, customer_id, program, row["partner_member_id"]),
    )


def open_customer_account(conn: sqlite3.Connection, customer_id: str, *, station: str, at: datetime,
                          partner_member_id: str | None) -> str:
    """Open the customer's account on first need (a sale by document before any card)."""
    account_id = new_id()
    now = iso(at)
    conn.execute(
        "INSERT INTO loyalty_accounts(account_id, customer_id, tier_id, is_fleet, partner_member_id, origin,"
        " created_at, updated_at) VALUES (?, ?, NULL, 0, ?, 'local', ?, ?)",
        (account_id, customer_id, partner_member_id, now, now),
    )
    append_event(conn, "account.created", {
        "account_id": account_id, "customer_id": customer_id, "tier_id": None, "is_fleet": False,
        "partner_member_id": partner_member_id, "station": station, "at": now, "opened_by": "sale",
    })
    return account_id


def require_sale_customer(sale_customer_id: str | None, customer_id: str) -> None:
    """Returns and voids naming a customer: the original sale must be theirs (409)."""
    if sale_customer_id != customer_id:
        raise LoyaltyError("sale_other_customer", "La venta original no es de ese cliente.",
                           "The original sale is not that customer's.", status=409, field="customer")



def card_joins_account(conn: sqlite3.Connection, customer_id: str, role: str, *, explicit_role: bool) -> tuple[str | None, str]:
    """Where a card issued to a customer goes: (account, role). ``None`` opens their first account."""
    row = customer_account(conn, customer_id)
    if row is None:
        return None, role
    account_id = str(row["account_id"])
    if role != "primary":
        return account_id, role
    has_primary = conn.execute(
        "SELECT 1 FROM loyalty_cards WHERE account_id = ? AND role = 'primary' AND state IN ('issued', 'blocked')",
        (account_id,)).fetchone() is not None
    if not has_primary:
        return account_id, "primary"
    if explicit_role:
        raise LoyaltyError(
            "customer_has_primary_card",
            "El cliente ya tiene una cuenta con tarjeta titular: emita la tarjeta como adicional o reemplace la titular.",
            "The customer already has an account with a primary card: issue this card as additional or replace "
            "the primary one.", status=409, field="role", extra={"account_id": account_id})
    return account_id, "additional"
