"""A demo earning program and rewards catalog for ``make run`` (simulated mode only).

A real station receives both from head office; a developer's simulated agent has no head
office, so without these a sale would earn nothing and no reward could be redeemed. Installed
at start only in simulated mode, and only where the station has none of its own: no rule
program (nor ``loyalty.rules_file``) and an empty catalog. Documented in docs/api.md.
"""
from __future__ import annotations

import sqlite3
from decimal import Decimal

from agent.clock import iso
from agent.lifecycle import Part

from .models import EarnRule, RuleProgram
from .requests import StockMovementRequest
from .rewards import receive_stock
from .service import LoyaltyService

DEMO_REWARDS = [  # reward_id, name, points, delivery, stock
    ("DEMO-CAFE", "Café de cortesía", 30, "immediate", 100),
    ("DEMO-BICI", "Bicicleta", 5000, "scheduled", 0),
]


def demo_program(timezone: str) -> RuleProgram:
    return RuleProgram(version="demo", timezone=timezone, rules=[
        EarnRule(rule_id="demo-fuel", article_group="FUEL", basis="per_unit", points=Decimal(1)),
        EarnRule(rule_id="demo-shop", article_group="SHOP", basis="per_amount", points=Decimal(1), per=Decimal(100)),
    ])


class DemoProgram(Part):
    """A part of the running agent whose ``start`` installs the demo program where none exists."""

    def __init__(self, loyalty: LoyaltyService) -> None:
        self.loyalty = loyalty

    def start(self) -> None:
        loyalty = self.loyalty
        has_program = loyalty.db.read(lambda c: c.execute("SELECT 1 FROM loyalty_rule_program").fetchone())
        if has_program is None and loyalty.settings.rules_file is None:
            loyalty.set_rule_program(demo_program(loyalty.default_timezone))
        loyalty.db.write(self._catalog)

    def _catalog(self, conn: sqlite3.Connection) -> None:
        if conn.execute("SELECT 1 FROM loyalty_rewards").fetchone() is not None:
            return
        at = self.loyalty.clock()
        for reward_id, name, points, delivery, stock in DEMO_REWARDS:
            conn.execute("INSERT INTO loyalty_rewards(reward_id, name, points_cost, delivery, active, updated_at)"
                         " VALUES (?, ?, ?, ?, 1, ?)", (reward_id, name, points, delivery, iso(at)))
            conn.execute("INSERT INTO loyalty_reward_stock(reward_id, quantity, low_threshold) VALUES (?, 0, 5)",
                         (reward_id,))
            if stock:
                receive_stock(conn, request=StockMovementRequest(reward_id=reward_id, kind="receipt", quantity=stock,
                                                                 document=f"DEMO-{reward_id}"),
                              station=self.loyalty.station_id, at=at)
