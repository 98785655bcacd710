"""Loyalty service: the operations the API (and the CLI) call, one transaction each.

Sales and redemptions need an attendant-authorized swipe session (``SwipeSessionAuthority``).
Writes accept an ``Idempotency-Key``: the first response is stored with the booking, in the
same transaction (the store's ``once``), and replayed for the same key and body; the same key
with a different body is refused (422). Independently of keys, a receipt (station, POS, number) books only once.
"""
from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from agent.clock import iso, utcnow
from agent.store.db import Database
from agent.store.idempotency import once, replay

from . import accounts, directory, holders, rewards, sales, stock
from .config import LoyaltySettings
from .errors import LoyaltyError
from .holders import CustomerKey, Earner
from .models import Receipt, RuleProgram, SaleEvaluation
from .requests import (
    IssueCardRequest,
    RedeemRequest,
    ReplaceCardRequest,
    ReturnRequest,
    SaleRequest,
    SimulateRequest,
    StockCountRequest,
    StockMovementRequest,
    VoidRequest,
)
from .rules import CompiledRules, EarningContext
from .sessions import LOCAL_POS, SwipeSessionAuthority
from .views import LoyaltyViews

T = TypeVar("T")
# Idempotency scopes (agent/store/idempotency.py); the key itself is "<client>:<Idempotency-Key>".
# A ":" cannot occur in a client name, so these never meet the customers' per-client scopes.
SALE_SCOPE = "loyalty:sales"
REVERSAL_SCOPE = "loyalty:reversals"  # returns and voids share one key space, as they share a table
REDEMPTION_SCOPE = "loyalty:redemptions"


def fingerprint(request: BaseModel) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


class LoyaltyService(LoyaltyViews):
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

    def _context(self, earner: Earner, at: datetime) -> EarningContext:
        return EarningContext(
            at=at, tier=earner.tier_name or earner.tier_id, tier_multiplier=earner.tier_multiplier,
            card_issued_at=earner.card_issued_at, card_first_used_at=earner.card_first_used_at,
        )

    def _check_station(self, receipt: Receipt, field: str) -> None:
        if receipt.station != self.station_id:
            raise LoyaltyError(
                "wrong_station",
                f"El comprobante es de la estación {receipt.station}, no de esta ({self.station_id}).",
                f"The receipt belongs to station {receipt.station}, not this one ({self.station_id}).",
                field=field,
            )

    def _earner(self, conn: sqlite3.Connection, swipe: Any, key: CustomerKey | None) -> Earner:
        """Who earns: the swiped card's account (checked against a named customer), else the
        named customer's account as it is now (none yet if they never earned here)."""
        customer_id = holders.find_customer(conn, key) if key is not None else None
        program = self.settings.partner.program
        if swipe is not None:
            return holders.earner_for_card(conn, accounts.card_view(conn, swipe.card_id), customer_id, program)
        assert key is not None and customer_id is not None
        return holders.earner_for_customer(conn, customer_id, key.identified_by, program)

    def simulate(self, request: SimulateRequest, pos: str = LOCAL_POS) -> SaleEvaluation:
        """Points the sale would earn, with the explanation; nothing is booked."""
        at = self.clock()
        rules = self.rules()
        key = holders.customer_key(request.customer, request.customer_id)
        swipe = self.sessions.require_authorized_session(request.session_id, pos) if request.session_id else None
        if swipe is None and key is None:
            return rules.evaluate(request.lines, EarningContext(at=at))
        earner = self.db.read(lambda c: self._earner(c, swipe, key))
        return rules.evaluate(request.lines, self._context(earner, at))

    def sale(self, request: SaleRequest, idempotency_key: str | None = None,
             pos: str = LOCAL_POS) -> tuple[dict, bool]:
        """Book a sale: provisional points now, event queued for head office. Returns (answer, replayed).

        By swipe (the attendant's PIN authorized it), by document or by customer id (seeds 000,
        003: no card, no PIN to earn); the customer's account opens on their first such sale."""
        self._check_station(request.receipt, "receipt.station")
        at = self.clock()
        rules = self.rules()

        # The document's spelling is checked before the swipe's one authorization is used.
        key = holders.customer_key(request.customer, request.customer_id)

        def book(conn: sqlite3.Connection, swipe: Any) -> dict:
            earner = self._earner(conn, swipe, key)
            if earner.account_id is None:
                assert earner.customer_id is not None
                account_id = holders.open_customer_account(conn, earner.customer_id, station=self.station_id, at=at,
                                                           partner_member_id=earner.partner_member_id)
                earner = replace(earner, account_id=account_id)
            evaluation = rules.evaluate(request.lines, self._context(earner, at))
            return sales.book_sale(
                conn, request=request, earner=earner, evaluation=evaluation,
                attendant_id=(swipe.attendant_id or "") if swipe is not None else "",
                station=self.station_id, at=at, fingerprint=fingerprint(request), partner=self.settings.partner,
            )

        if request.session_id is not None:  # one use of the attendant's PIN authorization
            answer, replayed = self._with_swipe_use(
                SALE_SCOPE, idempotency_key, fingerprint(request), request.session_id, pos, book)
        else:
            answer, replayed = self._idempotent(SALE_SCOPE, idempotency_key, fingerprint(request), lambda: None, book)
        return self._with_account_view(answer), replayed

    def return_sale(self, request: ReturnRequest, idempotency_key: str | None = None) -> tuple[dict, bool]:
        self._check_station(request.document, "document.station")
        at = self.clock()
        key = holders.customer_key(request.customer, request.customer_id)
        return self._idempotent(
            REVERSAL_SCOPE, idempotency_key, fingerprint(request), lambda: None,
            lambda conn, _: sales.return_sale(conn, request=request, station=self.station_id, at=at,
                                              fingerprint=fingerprint(request),
                                              customer_id=holders.find_customer(conn, key) if key else None),
        )

    def void_sale(self, request: VoidRequest, idempotency_key: str | None = None) -> tuple[dict, bool]:
        self._check_station(request.document, "document.station")
        at = self.clock()
        key = holders.customer_key(request.customer, request.customer_id)
        return self._idempotent(
            REVERSAL_SCOPE, idempotency_key, fingerprint(request), lambda: None,
            lambda conn, _: sales.void_sale(conn, request=request, station=self.station_id, at=at,
                                            fingerprint=fingerprint(request),
                                            customer_id=holders.find_customer(conn, key) if key else None),
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

    def count_stock(self, request: StockCountRequest) -> dict:
        at = self.clock()
        return self.db.write(lambda c: stock.count_stock(c, request=request, station=self.station_id, at=at))

    def stock_movements(self, *, reward_id: str | None = None, kind: str | None = None, start: datetime | None = None,
                        end: datetime | None = None, limit: int = 100, cursor: str | None = None) -> dict:
        return self.db.read(lambda c: stock.movements(c, reward_id=reward_id, kind=kind, start=start, end=end,
                                                      limit=limit, cursor=cursor))

    def pending_requests(self) -> list[dict]:
        return self.db.read(lambda c: stock.pending_requests(c, self.station_id))

    def reward_request(self, redemption_id: str) -> dict:
        return self.db.read(lambda c: stock.reward_request(c, redemption_id, self.station_id))

    def redemption(self, redemption_id: str) -> dict:
        return self.db.read(lambda c: stock.redemption(c, redemption_id))

    def open_replenishment(self) -> list[dict]:
        return self.db.read(stock.open_replenishment)

    def consolidate_replenishment(self) -> dict:
        at = self.clock()
        return self.db.write(lambda c: stock.consolidate_replenishment(c, station=self.station_id, at=at))

    def issue_card(self, request: IssueCardRequest) -> dict:
        """Issue a card. For a customer who already has an account the card joins it, never a
        second primary account: as its primary card if it has none yet (opened by a sale by
        document), else as an additional card; asking explicitly for a primary then is a 409."""
        at = self.clock()

        def run(c: sqlite3.Connection) -> dict:
            account_id, role = request.account_id, request.role
            if request.customer_id is not None:
                holders.find_customer(c, holders.CustomerKey(customer_id=request.customer_id))
                if account_id is None:
                    account_id, role = holders.card_joins_account(c, request.customer_id, role,
                                                                  explicit_role="role" in request.model_fields_set)
            # The customer's recorded opt-in to the partner program (seed 000: LATAM Pass with
            # member number) is what makes sales accrue miles; the POS need not repeat it.
            member = request.partner_member_id or holders.partner_member(
                c, request.customer_id, self.settings.partner.program, None)
            return accounts.issue_card(
                c, card_number=request.card_number, station=self.station_id, at=at, account_id=account_id,
                role=role, new_account_tier=request.tier_id, is_fleet=request.is_fleet,
                customer_id=request.customer_id, partner_member_id=member,
            )

        return self.db.write(run)

    def block_card(self, card_number: str, reason: str) -> dict:
        at = self.clock()
        return self.db.write(lambda c: accounts.block_card(c, card_number=card_number, reason=reason,
                                                           station=self.station_id, at=at))

    def replace_card(self, card_number: str, request: ReplaceCardRequest) -> dict:
        at = self.clock()
        return self.db.write(lambda c: accounts.replace_card(c, old_card=card_number, new_card=request.new_card,
                                                             reason=request.reason, station=self.station_id, at=at))

