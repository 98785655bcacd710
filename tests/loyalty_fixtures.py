"""Shared set-up for the loyalty tests: a real SQLite file with the core and loyalty schemas.

The swipe-session authority is an in-test stand-in: the real one (card reader + attendant PIN)
belongs to the cards feature (``agent.cards``) and is not on this branch; the loyalty service
depends only on its ``require_authorized_session`` contract (``agent.loyalty.sessions``).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from agent.errors import AgentError
from agent.loyalty.directory import AccountIn, CardIn, DirectoryDelta, RewardIn, SnapshotIn, TierIn
from agent.loyalty.models import EarnRule, FirstUseBonusRule, PromotionRule, RuleProgram
from agent.loyalty.service import LoyaltyService
from agent.store.db import Database
from agent.station import MIGRATIONS

STATION = "ST01"


def migrations() -> list[tuple[str, str]]:
    return list(MIGRATIONS)


@dataclass(frozen=True)
class Swipe:
    """Same fields the loyalty service reads from agent.cards.sessions.SwipeSession."""

    id: str
    card_id: str
    attendant_id: str


class FakeSessions:
    """Stand-in for agent.cards' session store: a dict of sessions the test authorized."""

    def __init__(self) -> None:
        self.sessions: dict[str, Swipe] = {}

    def authorize(self, session_id: str, card_number: str, attendant_id: str = "att-7") -> str:
        self.sessions[session_id] = Swipe(session_id, card_number, attendant_id)
        return session_id

    def require_authorized_session(self, session_id: str, pos: str = "local") -> Swipe:
        try:
            return self.sessions[session_id]
        except KeyError:
            raise AgentError("session_not_authorized", "Sesión no autorizada.", "Session not authorized.",
                             status=403) from None

    @contextmanager
    def use(self, session_id: str, pos: str = "local") -> Iterator[Swipe]:
        """Unlimited uses: these tests are about the booking; tests/cards check one use per PIN."""
        yield self.require_authorized_session(session_id, pos)

    def give_back(self, session_id: str) -> None:
        pass


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def program() -> RuleProgram:
    return RuleProgram(version="p1", rules=[
        EarnRule(rule_id="fuel-l", article_group="FUEL", basis="per_unit", points=Decimal(1)),
        EarnRule(rule_id="shop-100", article_group="SHOP", basis="per_amount", points=Decimal(1), per=Decimal(100)),
        PromotionRule(rule_id="premium-x2", sku="PREMIUM95", factor=Decimal(2),
                      valid_from=datetime(2026, 3, 1).date(), valid_to=datetime(2026, 3, 31).date()),
        FirstUseBonusRule(rule_id="welcome-x3", factor=Decimal(3), within_days=30),
    ])


def base_delta(as_of: datetime) -> DirectoryDelta:
    """Two accounts known chain-wide: a Gold customer with 1,000 points and a fleet."""
    return DirectoryDelta(
        seq=1, as_of=as_of,
        tiers=[TierIn(tier_id="GOLD", name="Oro", multiplier=Decimal("1.5")),
               TierIn(tier_id="SILVER", name="Plata", multiplier=Decimal(1))],
        accounts=[
            AccountIn(account_id="A1", tier_id="GOLD", partner_member_id="LP123456",
                      snapshot=SnapshotIn(balance=1000, expiring_next_close=120, next_close=as_of.date(),
                                          as_of=as_of, station_seq={STATION: 0})),
            AccountIn(account_id="FLEET", tier_id="SILVER", is_fleet=True),
        ],
        cards=[
            CardIn(card_number="C1000", account_id="A1", role="primary", state="issued",
                   issued_at=datetime(2025, 1, 1, tzinfo=timezone.utc), first_used_at=datetime(2025, 1, 2, tzinfo=timezone.utc)),
            CardIn(card_number="FLEET-OWNER", account_id="FLEET", role="primary", state="issued",
                   issued_at=datetime(2025, 1, 1, tzinfo=timezone.utc), first_used_at=datetime(2025, 1, 2, tzinfo=timezone.utc)),
            CardIn(card_number="TRUCK-1", account_id="FLEET", role="vehicle", state="issued",
                   issued_at=datetime(2025, 1, 1, tzinfo=timezone.utc), first_used_at=datetime(2025, 1, 2, tzinfo=timezone.utc)),
            CardIn(card_number="NEW-1", state="unassigned"),
        ],
        rewards=[RewardIn(reward_id="MUG", name="Taza", points_cost=300, delivery="immediate", low_threshold=1),
                 RewardIn(reward_id="BIKE", name="Bicicleta", points_cost=900, delivery="scheduled")],
    )


def make_service(tmp_path: Path, at: datetime) -> tuple[LoyaltyService, FakeSessions, Clock, Database]:
    db = Database(tmp_path / "agent.db", migrations=migrations())
    sessions = FakeSessions()
    clock = Clock(at)
    service = LoyaltyService(db, station_id=STATION, sessions=sessions, clock=clock)
    service.set_rule_program(program())
    service.apply_directory_delta(base_delta(at))
    return service, sessions, clock, db


def events(db: Database, type_: str | None = None) -> list[dict]:
    rows = db.read(lambda c: c.execute("SELECT type, payload FROM outbox ORDER BY seq").fetchall())
    return [json.loads(r["payload"]) | {"_type": r["type"]} for r in rows if type_ is None or r["type"] == type_]


def make_app(tmp_path: Path, at: datetime):
    """The real FastAPI app over a real database (``create_app`` mounts the loyalty router)."""
    from agent.api.app import create_app
    from agent.config import Settings
    from agent.station import assemble_station

    service, sessions, clock, db = make_service(tmp_path, at)
    settings = Settings(storage={"data_dir": tmp_path})
    services = assemble_station(settings, db, loyalty=service)
    app = create_app(settings, services)
    token = services.tokens.create("pos-1")
    return app, token, sessions, clock, db
