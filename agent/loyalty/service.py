"""Loyalty service: the operations the API (and the CLI) call, one transaction each.

Sales and redemptions need an attendant-authorized swipe session (``SwipeSessionAuthority``).
Writes accept an ``Idempotency-Key``: the first response is stored with the booking, in the
same transaction (the store's ``once``), and replayed for the same key and body; the same key
with a different body is refused (422). Independently of keys, a receipt (station, POS, number) books only once.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from agent.clock import iso, utcnow
from agent.store.db import Database
from agent.store.idempotency import once, replay

from . import accounts, directory, ledger, rewards, sales
from .config import LoyaltySettings
from .errors import LoyaltyError, not_found
from .models import Receipt, RuleProgram, SaleEvaluation
from .requests import (
    IssueCardRequest,
    RedeemRequest,
    ReplaceCardRequest,
    ReturnRequest,
    SaleRequest,
    SimulateRequest,
    StockMovementRequest,
    VoidRequest,
)
from .rules import CompiledRules, EarningContext
from .sessions import LOCAL_POS, SwipeSessionAuthority

T = TypeVar("T")
MASKED = "masked"
# Idempotency scopes (agent/store/idempotency.py); the key itself is "<client>:<Idempotency-Key>".
# A ":" cannot occur in a client name, so these never meet the customers' per-client scopes.
SALE_SCOPE = "loyalty:sales"
REVERSAL_SCOPE = "loyalty:reversals"  # returns and voids share one key space, as they share a table
REDEMPTION_SCOPE = "loyalty:redemptions"


def fingerprint(request: BaseModel) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


class LoyaltyService:
    def __init__(
        self,
        db: Database,
        *,
        station_id: str,
        sessions: SwipeSessionAuthority,
        settings: LoyaltySettings | None = None,
        timezone: str = "America/Santiago",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.station_id = station_id
        self.sessions = sessions
        self.settings = settings or LoyaltySettings()
        self.default_timezone = timezone
        self.clock = clock
        self._rules: CompiledRules | None = None
        self._rules_lock = threading.Lock()

    # --- rules -----------------------------------------------------------------------------

    def rules(self) -> CompiledRules:
        """The compiled program: head office's last one, else the local file, else an empty one."""
        with self._rules_lock:
            if self._rules is None:
                self._rules = CompiledRules(self._load_program())
            return self._rules

    def _load_program(self) -> RuleProgram:
        row = self.db.read(lambda c: c.execute("SELECT program FROM loyalty_rule_program WHERE one = 1").fetchone())
        if row is not None:
            return RuleProgram.model_validate_json(row["program"])
        if self.settings.rules_file is not None:
            return RuleProgram.model_validate_json(self.settings.rules_file.read_text(encoding="utf-8"))
        return RuleProgram(version="none", timezone=self.default_timezone)

    def set_rule_program(self, program: RuleProgram) -> None:
        """Install a program received from head office (downlink); evaluation switches at once."""
        compiled = CompiledRules(program)  # compile first: a bad program changes nothing
        self.db.write(lambda c: c.execute(
            "INSERT INTO loyalty_rule_program(one, version, program, applied_at) VALUES (1, ?, ?, ?)"
            " ON CONFLICT(one) DO UPDATE SET version = excluded.version, program = excluded.program,"
            " applied_at = excluded.applied_at",
            (program.version, program.model_dump_json(), iso(self.clock())),
        ))
        with self._rules_lock:
            self._rules = compiled

    # --- directory -------------------------------------------------------------------------

    def apply_directory_delta(self, delta: directory.DirectoryDelta) -> bool:
        """Apply a head-office delta atomically; False if already applied. A delta that breaks
        the directory's integrity (a card on an unknown account, ...) changes nothing."""
        try:
            return self.db.write(lambda c: directory.apply_delta(c, delta, self.station_id))
        except sqlite3.IntegrityError as exc:
            raise LoyaltyError(
                "directory_delta_invalid",
                f"La actualización {delta.seq} del directorio es inconsistente y no se aplicó.",
                f"Directory update {delta.seq} is inconsistent and was not applied ({exc}).",
            ) from exc

    # --- idempotency -----------------------------------------------------------------------

    def _idempotent(
        self, scope: str, key: str | None, print_: str, before: Callable[[], T], book: Callable[[sqlite3.Connection, T], dict]
    ) -> tuple[dict, bool]:
        """Replay a stored answer, or run ``before`` (outside the write lock) then ``book`` once per
        key (``once`` checks again inside the transaction: a concurrent twin may have won)."""
        if key is not None:
            stored = self.db.read(lambda c: replay(c, scope, key, print_))
            if stored is not None:
                return stored, True
        prepared = before()
        return self.db.write(lambda conn: once(conn, scope, key, print_, lambda c: book(c, prepared)))

    def _with_swipe_use(self, scope: str, key: str | None, print_: str, session_id: str | None, pos: str,
                        book: Callable[[sqlite3.Connection, Any], dict]) -> tuple[dict, bool]:
        """Book with one use of the swipe's PIN authorization; a retry with the same key replays
        without needing one, and a booking that fails gives the use back."""
        if key is not None:
            stored = self.db.read(lambda c: replay(c, scope, key, print_))
            if stored is not None:
                return stored, True
        with self.sessions.use(session_id, pos) as swipe:
            answer, replayed = self._idempotent(scope, key, print_, lambda: swipe, book)
            if replayed:  # a concurrent twin booked it: this request spent nothing
                self.sessions.give_back(swipe.id)
            return answer, replayed

    def card_refusal(self, card_number: str) -> LoyaltyError | None:
        """Why a swiped card cannot take part in a sale (unknown, blocked, replaced), or None."""
        try:
            self.db.read(lambda c: accounts.card_view(c, card_number))
        except LoyaltyError as exc:
            return exc
        return None

    # --- sales -----------------------------------------------------------------------------

    def _context(self, card: accounts.CardView, at: datetime) -> EarningContext:
        return EarningContext(
            at=at, tier=card.tier_name or card.tier_id, tier_multiplier=card.tier_multiplier,
            card_issued_at=card.issued_at, card_first_used_at=card.first_used_at,
        )

    def _check_station(self, receipt: Receipt, field: str) -> None:
        if receipt.station != self.station_id:
            raise LoyaltyError(
                "wrong_station",
                f"El comprobante es de la estación {receipt.station}, no de esta ({self.station_id}).",
                f"The receipt belongs to station {receipt.station}, not this one ({self.station_id}).",
                field=field,
            )

    def simulate(self, request: SimulateRequest, pos: str = LOCAL_POS) -> SaleEvaluation:
        """Points the sale would earn, with the explanation; nothing is booked."""
        at = self.clock()
        rules = self.rules()
        if request.session_id is None:
            return rules.evaluate(request.lines, EarningContext(at=at))
        swipe = self.sessions.require_authorized_session(request.session_id, pos)
        card = self.db.read(lambda c: accounts.card_view(c, swipe.card_id))
        return rules.evaluate(request.lines, self._context(card, at))

    def sale(self, request: SaleRequest, idempotency_key: str | None = None,
             pos: str = LOCAL_POS) -> tuple[dict, bool]:
        """Book a sale: provisional points now, event queued for head office. Returns (answer, replayed)."""
        self._check_station(request.receipt, "receipt.station")
        at = self.clock()
        rules = self.rules()

        def book(conn: sqlite3.Connection, swipe: Any) -> dict:
            card = accounts.card_view(conn, swipe.card_id)
            evaluation = rules.evaluate(request.lines, self._context(card, at))
            return sales.book_sale(
                conn, request=request, card=card, evaluation=evaluation, attendant_id=swipe.attendant_id or "",
                station=self.station_id, at=at, fingerprint=fingerprint(request), partner=self.settings.partner,
            )

        answer, replayed = self._with_swipe_use(
            SALE_SCOPE, idempotency_key, fingerprint(request), request.session_id, pos, book)
        return self._with_account_view(answer), replayed

    def _with_account_view(self, answer: dict) -> dict:
        """Add the current balance (masked for fleet vehicle cards) and the customer's messages."""
        def read(conn: sqlite3.Connection) -> dict:
            card_number = conn.execute(
                "SELECT card_number FROM loyalty_sales WHERE sale_id = ?", (answer["sale_id"],)
            ).fetchone()["card_number"]
            return self._card_summary(conn, card_number)

        return answer | self.db.read(read)

    def _card_summary(self, conn: sqlite3.Connection, card_number: str) -> dict:
        row = conn.execute(
            "SELECT c.role, c.account_id, a.tier_id FROM loyalty_cards c JOIN loyalty_accounts a"
            " ON a.account_id = c.account_id WHERE c.card_number = ?", (card_number,)
        ).fetchone()
        masked = row["role"] == "vehicle"
        bal = ledger.balance(conn, row["account_id"])
        return {
            "balance": MASKED if masked else bal.as_dict(),
            "balance_masked": masked,
            "messages": directory.messages_for(conn, card_number, row["account_id"], row["tier_id"], self.clock()),
        }

    def swipe_info(self, session_id: str, pos: str = LOCAL_POS) -> dict:
        """What the POS shows when a card is swiped: account, tier, balance (or masked), messages."""
        swipe = self.sessions.require_authorized_session(session_id, pos)

        def read(conn: sqlite3.Connection) -> dict:
            card = accounts.card_view(conn, swipe.card_id)
            return {"account_id": card.account_id, "card": accounts.mask_card(card.card_number), "role": card.role,
                    "tier": card.tier_name or card.tier_id} | self._card_summary(conn, card.card_number)

        return self.db.read(read)

    def return_sale(self, request: ReturnRequest, idempotency_key: str | None = None) -> tuple[dict, bool]:
        self._check_station(request.document, "document.station")
        at = self.clock()
        return self._idempotent(
            REVERSAL_SCOPE, idempotency_key, fingerprint(request), lambda: None,
            lambda conn, _: sales.return_sale(conn, request=request, station=self.station_id, at=at,
                                              fingerprint=fingerprint(request)),
        )

    def void_sale(self, request: VoidRequest, idempotency_key: str | None = None) -> tuple[dict, bool]:
        self._check_station(request.document, "document.station")
        at = self.clock()
        return self._idempotent(
            REVERSAL_SCOPE, idempotency_key, fingerprint(request), lambda: None,
            lambda conn, _: sales.void_sale(conn, request=request, station=self.station_id, at=at,
                                            fingerprint=fingerprint(request)),
        )

    # --- rewards ---------------------------------------------------------------------------

    def redeem(self, request: RedeemRequest, idempotency_key: str | None = None,
               pos: str = LOCAL_POS) -> tuple[dict, bool]:
        at = self.clock()

        def book(conn: sqlite3.Connection, swipe: Any) -> dict:
            card = accounts.card_view(conn, swipe.card_id)
            return rewards.redeem(conn, request=request, card=card, attendant_id=swipe.attendant_id or "",
                                  station=self.station_id, at=at, fingerprint=fingerprint(request))

        return self._with_swipe_use(REDEMPTION_SCOPE, idempotency_key, fingerprint(request),
                                    request.session_id, pos, book)

    def catalog(self) -> list[dict]:
        return self.db.read(rewards.catalog)

    def receive_stock(self, request: StockMovementRequest) -> dict:
        at = self.clock()
        return self.db.write(lambda c: rewards.receive_stock(c, request=request, station=self.station_id, at=at))

    # --- accounts and cards ----------------------------------------------------------------

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
            row = conn.execute("SELECT tier_id, is_fleet FROM loyalty_accounts WHERE account_id = ?",
                               (account_id,)).fetchone()
            cards = conn.execute("SELECT card_number, role, state FROM loyalty_cards WHERE account_id = ?"
                                 " ORDER BY role, card_number", (account_id,)).fetchall()
            masked = self._viewer_is_vehicle(conn, account_id, session_id, pos)
            return {
                "account_id": account_id, "tier_id": row["tier_id"], "is_fleet": bool(row["is_fleet"]),
                "balance": MASKED if masked else bal.as_dict(), "balance_masked": masked,
                "cards": [{"card": accounts.mask_card(c["card_number"]), "role": c["role"], "state": c["state"]}
                          for c in cards],
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

    def issue_card(self, request: IssueCardRequest) -> dict:
        at = self.clock()

        def run(c: sqlite3.Connection) -> dict:
            # The customer's recorded opt-in to the partner program (seed 000: LATAM Pass with
            # member number) is what makes sales accrue miles; the POS need not repeat it.
            member = request.partner_member_id or self._partner_member_from_consents(c, request.customer_id)
            return accounts.issue_card(
                c, card_number=request.card_number, station=self.station_id, at=at, account_id=request.account_id,
                role=request.role, new_account_tier=request.tier_id, is_fleet=request.is_fleet,
                customer_id=request.customer_id, partner_member_id=member,
            )

        return self.db.write(run)

    def _partner_member_from_consents(self, conn: sqlite3.Connection, customer_id: str | None) -> str | None:
        if customer_id is None:
            return None
        row = conn.execute("SELECT data FROM customers WHERE id = ?", (customer_id,)).fetchone()
        if row is None:
            return None
        wanted = _program_key(self.settings.partner.program)
        for program in json.loads(row["data"]).get("consents", {}).get("partner_programs", []):
            if _program_key(program.get("name", "")) == wanted and program.get("value") and program.get("member_id"):
                return str(program["member_id"])
        return None

    def block_card(self, card_number: str, reason: str) -> dict:
        at = self.clock()
        return self.db.write(lambda c: accounts.block_card(c, card_number=card_number, reason=reason,
                                                           station=self.station_id, at=at))

    def replace_card(self, card_number: str, request: ReplaceCardRequest) -> dict:
        at = self.clock()
        return self.db.write(lambda c: accounts.replace_card(c, old_card=card_number, new_card=request.new_card,
                                                             reason=request.reason, station=self.station_id, at=at))


def _program_key(name: str) -> str:
    """'LATAM Pass', 'latam_pass' and 'LATAM-PASS' name the same program.

    >>> _program_key("LATAM Pass") == _program_key("LATAM_PASS")
    True
    """
    return "".join(ch for ch in name.casefold() if ch.isalnum())
