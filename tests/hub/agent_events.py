"""Real agent messages for the hub's schema and ingest tests: the agent's own services (real
SQLite, real outbox) do the work, and the batch is encoded by the agent's publisher, so these
are byte for byte what a station sends. Every event type the agent emits is produced here.
Synthetic people only (MARIA is the repository's synthetic customer).
"""
from __future__ import annotations

import base64
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
from agent.customers.models import CustomerCreate, CustomerPatch
from agent.errors import AgentError
from agent.loyalty.models import Receipt, SaleLine
from agent.loyalty.requests import (
    CustomerDocument,
    IssueCardRequest,
    RedeemRequest,
    ReplaceCardRequest,
    ReturnLine,
    ReturnRequest,
    SaleRequest,
    StockCountRequest,
    StockMovementRequest,
    VoidRequest,
)
from agent.store import outbox
from agent.queue.messages import encode_batch
from agent.config import Settings
from agent.station import customer_service
from tests.conftest import MARIA
from tests.loyalty_fixtures import STATION, make_service

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def _sale(number: str, session: str | None, lines: list[SaleLine] | None = None,
          customer: CustomerDocument | None = None) -> SaleRequest:
    return SaleRequest(session_id=session, customer=customer, receipt=Receipt(station=STATION, pos="P1", number=number), lines=lines or [
        SaleLine(sku="PREMIUM95", article_group="FUEL", quantity=Decimal("40"), amount=Decimal("52000")),
        SaleLine(sku="COKE", article_group="SHOP", quantity=Decimal("2"), amount=Decimal("1990"))])


def produce_all(tmp: Path) -> dict[str, Any]:
    """Run one station through every operation that emits an event; return its batch (all events)."""
    service, sessions, _, db = make_service(tmp, NOW)
    settings = Settings(storage={"data_dir": tmp}, station={"id": STATION})
    customers = customer_service(db, settings)
    maria = customers.create(CustomerCreate.model_validate(MARIA), "pos:pos-1/attendant:P-017")
    customers.update(maria.id, CustomerPatch.model_validate({"email": None}), "pos:pos-1")
    # A sale by document before any card (seeds 000, 003): opens her account (account.created,
    # opened_by sale) and earns with no card (points.earned identified_by document).
    service.sale(_sale("0999", None, customer=CustomerDocument(
        document_country="CL", document_type="RUT", document_number=MARIA["document"]["number"])))
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
    service.receive_stock(StockMovementRequest(reward_id="MUG", kind="shipment_receipt", quantity=3, document="VR-7"))
    service.receive_stock(StockMovementRequest(reward_id="MUG", kind="transfer_out", quantity=2, document="GD-9",
                                               note="a la estación vecina"))
    service.count_stock(StockCountRequest(reward_id="MUG", counted=2, document="CONTEO-1", note="una taza rota"))
    service.redeem(RedeemRequest(session_id="s1", reward_id="MUG"))  # grant + stock_low (threshold 1)
    sessions.authorize("s2", "C1000")
    service.sale(_sale("1003", "s2", [SaleLine(sku="DIESEL", article_group="FUEL", quantity=Decimal(600),
                                                amount=Decimal(600000))]))
    service.redeem(RedeemRequest(session_id="s2", reward_id="BIKE"))  # scheduled: reward.requested
    sessions.authorize("s3", "NEW-1")  # María's own card: her scheduled reward's slip carries her data
    service.sale(_sale("1004", "s3", [SaleLine(sku="DIESEL", article_group="FUEL", quantity=Decimal(600),
                                                amount=Decimal(600000))]))
    service.redeem(RedeemRequest(session_id="s3", reward_id="BIKE"))
    service.consolidate_replenishment()  # the MUG grant: reward.replenishment_requested
    service.block_card("C1000", "perdida")
    service.replace_card("C1000", ReplaceCardRequest(new_card="NEW-2", reason="perdida"))
    TemplateStore(db, os.urandom(32)).save(maria.id, "right_index", b"\x01" * 512, "r30x-char-v1", "R307")
    TemplateStore(db, os.urandom(32)).delete(maria.id)
    _pins(db)
    rows = db.read(lambda c: outbox.unconfirmed_after(c, 0, 10_000))
    out = json.loads(encode_batch(STATION, rows))  # the publisher's own encoder
    db.close()
    return out


def _pins(db: Any) -> None:
    key = Ed25519PrivateKey.generate()
    pepper = os.urandom(32)
    pins = AttendantPins(db, station_id=STATION, settings=PinSettings(max_failures=2, station_max_failures=3),
                         pepper=pepper, public_key=key.public_key())
    pins.set_bundle_key(base64.b64encode(key.public_key().public_bytes_raw()).decode())  # pins.key_changed (a key rotation)
    pins.import_bundle(build_bundle(key, version=3, stations=[STATION], issued_at=NOW - timedelta(hours=1),
                                    expires_at=NOW + timedelta(days=1), pins={"P-07": "4321", "P-08": "8765"}, pepper=pepper))
    # P-07's second failure locks P-07 out; P-08's failure is the station's third: PIN checks pause.
    for attendant in ("P-07", "P-07", "P-08"):
        try:
            pins.verify(attendant, "0000")
        except AgentError:
            pass
