"""Real agent messages for the hub's schema and ingest tests: the agent's own services (real
SQLite, real outbox) do the work, and the batch is encoded by the agent's publisher, so these
are byte for byte what a station sends. Every event type the agent emits is produced here.
Synthetic people only (MARIA is the repository's synthetic customer).
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.biometric.templates import TemplateStore
from agent.cards.config import PinSettings
from agent.cards.pin_bundle import build_bundle
from agent.cards.pins import AttendantPins
from agent.config import MqttSettings
from agent.customers.models import CustomerCreate, CustomerPatch
from agent.customers.service import CustomerService
from agent.errors import AgentError
from agent.loyalty.models import Receipt, SaleLine
from agent.loyalty.requests import (
    IssueCardRequest,
    RedeemRequest,
    ReplaceCardRequest,
    ReturnLine,
    ReturnRequest,
    SaleRequest,
    StockMovementRequest,
    VoidRequest,
)
from agent.store import outbox
from agent.queue.downlink import Downlink
from agent.queue.messages import encode_batch
from agent.queue.publisher import SyncPublisher
from agent.config import Settings
from agent.station import customer_service
from tests.conftest import MARIA
from tests.loyalty_fixtures import STATION, make_service

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _sale(number: str, session: str, lines: list[SaleLine] | None = None) -> SaleRequest:
    return SaleRequest(session_id=session, receipt=Receipt(station=STATION, pos="P1", number=number), lines=lines or [
        SaleLine(sku="PREMIUM95", article_group="FUEL", quantity=Decimal("40"), amount=Decimal("52000")),
        SaleLine(sku="COKE", article_group="SHOP", quantity=Decimal("2"), amount=Decimal("1990"))])


def produce_all(tmp: Path) -> dict[str, Any]:
    """Run one station through every operation that emits an event; return its batch (all events)."""
    service, sessions, _, db = make_service(tmp, NOW)
    settings = Settings(storage={"data_dir": tmp}, station={"id": STATION})
    customers = customer_service(db, settings)
    maria = customers.create(CustomerCreate.model_validate(MARIA), "pos:pos-1/attendant:P-017")
    customers.update(maria.id, CustomerPatch.model_validate({"email": None}), "pos:pos-1")
    service.issue_card(IssueCardRequest(card_number="NEW-1", customer_id=maria.id))
    sessions.authorize("s1", "C1000")
    service.sale(_sale("1001", "s1"))  # points.earned + partner.accrual (A1 has a partner id)
    service.return_sale(ReturnRequest(original=Receipt(station=STATION, pos="P1", number="1001"),
                                      document=Receipt(station=STATION, pos="P1", number="NC-1"), reason="devolución",
                                      lines=[ReturnLine(line_no=2, quantity=Decimal(1))]))
    service.void_sale(VoidRequest(original=Receipt(station=STATION, pos="P1", number="1001"),
                                  document=Receipt(station=STATION, pos="P1", number="NC-2"), reason="anulada"))
    service.sale(_sale("1002", "s1"))
    service.receive_stock(StockMovementRequest(reward_id="MUG", kind="receipt", quantity=2, document="GR-1"))
    service.redeem(RedeemRequest(session_id="s1", reward_id="MUG"))  # grant + stock_low (threshold 1)
    sessions.authorize("s2", "C1000")
    service.sale(_sale("1003", "s2", [SaleLine(sku="DIESEL", article_group="FUEL", quantity=Decimal(600),
                                                amount=Decimal(600000))]))
    service.redeem(RedeemRequest(session_id="s2", reward_id="BIKE"))  # scheduled: reward.requested
    service.block_card("C1000", "perdida")
    service.replace_card("C1000", ReplaceCardRequest(new_card="NEW-2", reason="perdida"))
    TemplateStore(db, os.urandom(32)).save(maria.id, "right_index", b"\x01" * 512, "r30x-char-v1", "R307")
    TemplateStore(db, os.urandom(32)).delete(maria.id)
    _pins(db)
    publisher = SyncPublisher(db, MqttSettings(url="mqtt://127.0.0.1:1"), STATION, Downlink(db))
    rows = db.read(lambda c: outbox.unconfirmed_after(c, 0, 10_000))
    out = json.loads(encode_batch(STATION, rows))
    db.close()
    return out


def _pins(db: Any) -> None:
    key = Ed25519PrivateKey.generate()
    pepper = os.urandom(32)
    pins = AttendantPins(db, station_id=STATION, settings=PinSettings(max_failures=2), pepper=pepper,
                         public_key=key.public_key())
    pins.import_bundle(build_bundle(key, version=3, stations=[STATION], issued_at=NOW - timedelta(hours=1),
                                    expires_at=NOW + timedelta(days=1), pins={"P-07": "4321"}, pepper=pepper))
    for _ in range(2):
        try:
            pins.verify("P-07", "0000")
        except AgentError:
            pass
