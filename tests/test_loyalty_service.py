"""Loyalty service against a real SQLite file (core outbox + loyalty schema).

The swipe sessions come from tests.loyalty_fixtures.FakeSessions, an in-test stand-in for
the cards feature's attendant-PIN sessions (not on this branch).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from agent.errors import AgentError
from agent.loyalty.directory import AccountIn, DirectoryDelta, MessageIn, SnapshotIn
from agent.loyalty.models import Receipt, SaleLine
from agent.loyalty.requests import (
    IssueCardRequest,
    RedeemRequest,
    ReplaceCardRequest,
    ReturnLine,
    ReturnRequest,
    SaleRequest,
    SimulateRequest,
    StockMovementRequest,
    VoidRequest,
)
from tests.loyalty_fixtures import STATION, events, make_service

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)  # 12:00 in Santiago (DST, UTC-3)


@pytest.fixture
def env(tmp_path):
    service, sessions, clock, db = make_service(tmp_path, NOW)
    yield service, sessions, clock, db
    db.close()


def sale_req(session: str, number: str, lines=None) -> SaleRequest:
    lines = lines or [
        SaleLine(sku="PREMIUM95", article_group="FUEL", quantity=Decimal("40"), amount=Decimal("52000")),
        SaleLine(sku="COKE", article_group="SHOP", quantity=Decimal("2"), amount=Decimal("1990")),
    ]
    return SaleRequest(session_id=session, receipt=Receipt(station=STATION, pos="P1", number=number), lines=lines)


def count(db, table: str) -> int:
    return db.read(lambda c: c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_sale_books_points_event_and_partner_accrual(env):
    service, sessions, _, db = env
    sessions.authorize("s1", "C1000")
    answer, replayed = service.sale(sale_req("s1", "1001"), "key-1")
    # PREMIUM95: 40 l x1 x promo 2 x Gold 1.5 = 120; COKE: 1990/100 = 19.9 x1.5 = 29.85 -> 29.
    assert not replayed and answer["points"] == 149
    assert [lp["points"] for lp in answer["evaluation"]["lines"]] == [120, 29]
    assert [a["kind"] for a in answer["evaluation"]["lines"][0]["applied"]] == ["earn", "promotion", "tier"]
    assert answer["balance"]["points"] == 1149 and answer["balance"]["expiring_next_close"] == 120
    earned = events(db, "points.earned")
    assert len(earned) == 1
    e = earned[0]
    assert e["station"] == STATION and e["points"] == 149
    assert e["receipt"] == {"station": STATION, "pos": "P1", "number": "1001"}
    assert e["by_article_group"] == {"FUEL": 120, "SHOP": 29}
    partner = events(db, "partner.accrual")
    assert partner[0]["miles"] == 149 and partner[0]["member_id"] == "LP123456"


def test_idempotent_replay_and_replayed_receipt(env):
    service, sessions, _, db = env
    sessions.authorize("s1", "C1000")
    first, _ = service.sale(sale_req("s1", "1001"), "key-1")
    again, replayed = service.sale(sale_req("s1", "1001"), "key-1")
    assert replayed and again["sale_id"] == first["sale_id"]
    n_events = count(db, "outbox")
    with pytest.raises(AgentError) as err:
        service.sale(sale_req("s1", "1002"), "key-1")
    assert err.value.code == "idempotency_key_reused" and err.value.status == 422
    with pytest.raises(AgentError) as err:
        service.sale(sale_req("s1", "1001"), "key-2")
    assert err.value.code == "receipt_already_booked" and err.value.status == 409
    with pytest.raises(AgentError) as err:
        service.sale(sale_req("s1", "1001"))
    assert err.value.code == "receipt_already_booked"
    assert count(db, "outbox") == n_events and count(db, "loyalty_sales") == 1
    assert service.account("A1")["balance"]["points"] == 1149


def test_unauthorized_session_and_wrong_station_book_nothing(env):
    service, sessions, _, db = env
    with pytest.raises(AgentError) as err:
        service.sale(sale_req("nobody", "1"))
    assert err.value.code == "session_not_authorized"
    sessions.authorize("s1", "C1000")
    bad = SaleRequest(session_id="s1", receipt=Receipt(station="OTHER", pos="P1", number="1"),
                      lines=[SaleLine(sku="X", quantity=Decimal(1), amount=Decimal(1))])
    with pytest.raises(AgentError) as err:
        service.sale(bad)
    assert err.value.code == "wrong_station"
    assert count(db, "loyalty_sales") == 0 and count(db, "loyalty_ledger") == 0


def test_new_card_earns_immediately_with_first_use_bonus_once(env):
    service, sessions, clock, db = env
    issued = service.issue_card(IssueCardRequest(card_number="NEW-1"))
    assert issued["state"] == "issued"
    sessions.authorize("s2", "NEW-1")
    line = [SaleLine(sku="DIESEL", article_group="FUEL", quantity=Decimal(10), amount=Decimal(9000))]
    first, _ = service.sale(sale_req("s2", "2001", line))
    assert first["points"] == 30  # triple on first use, no waiting for head office
    clock.at = NOW + timedelta(days=1)
    second, _ = service.sale(sale_req("s2", "2002", line))
    assert second["points"] == 10
    assert service.account(issued["account_id"])["balance"]["points"] == 40
    types = [e["_type"] for e in events(db)]
    assert types.index("account.created") < types.index("card.issued") < types.index("points.earned")


def test_additional_cards_pool_points_and_are_limited_to_two(env):
    service, sessions, _, _ = env
    for card in ("ADD-1", "ADD-2"):
        service.issue_card(IssueCardRequest(card_number=card, account_id="A1", role="additional"))
    with pytest.raises(AgentError) as err:
        service.issue_card(IssueCardRequest(card_number="ADD-3", account_id="A1", role="additional"))
    assert err.value.code == "too_many_additional_cards"
    sessions.authorize("s3", "ADD-2")
    line = [SaleLine(sku="DIESEL", article_group="FUEL", quantity=Decimal(10), amount=Decimal(9000))]
    answer, _ = service.sale(sale_req("s3", "3001", line))
    assert answer["account_id"] == "A1"
    # ADD-2 is brand new: first use x3 beats nothing else; Gold x1.5 -> 45.
    assert answer["points"] == 45 and service.account("A1")["balance"]["points"] == 1045
    with pytest.raises(AgentError) as err:
        service.issue_card(IssueCardRequest(card_number="C1000"))
    assert err.value.code == "card_not_unassigned"


def test_fleet_vehicle_card_earns_for_owner_never_redeems_never_sees(env):
    service, sessions, _, db = env
    sessions.authorize("truck", "TRUCK-1")
    line = [SaleLine(sku="DIESEL", article_group="FUEL", quantity=Decimal(500), amount=Decimal(450000))]
    answer, _ = service.sale(sale_req("truck", "4001", line))
    assert answer["account_id"] == "FLEET" and answer["points"] == 500
    assert answer["balance"] == "masked" and answer["balance_masked"] is True
    assert service.account("FLEET", session_id="truck")["balance"] == "masked"
    with pytest.raises(AgentError) as err:
        service.movements("FLEET", session_id="truck")
    assert err.value.code == "fleet_card_cannot_view"
    service.receive_stock(StockMovementRequest(reward_id="MUG", kind="receipt", quantity=5, document="R-1"))
    before = count(db, "outbox")
    with pytest.raises(AgentError) as err:
        service.redeem(RedeemRequest(session_id="truck", reward_id="MUG"))
    assert err.value.code == "fleet_card_cannot_redeem" and err.value.status == 403
    assert "flota" in err.value.es
    assert count(db, "outbox") == before
    sessions.authorize("owner", "FLEET-OWNER")
    assert service.account("FLEET", session_id="owner")["balance"]["points"] == 500
    redeemed, _ = service.redeem(RedeemRequest(session_id="owner", reward_id="MUG"))
    assert redeemed["status"] == "delivered" and redeemed["balance_after"] == 200


def test_returns_per_line_proportional_and_no_double_reversal(env):
    service, sessions, _, db = env
    sessions.authorize("s1", "C1000")
    service.sale(sale_req("s1", "1001"))  # lines: 120 + 29 points
    orig = Receipt(station=STATION, pos="P1", number="1001")

    def doc(n: str) -> Receipt:
        return Receipt(station=STATION, pos="P1", number=n)

    half, _ = service.return_sale(ReturnRequest(original=orig, document=doc("NC-1"), reason="cliente",
                                                lines=[ReturnLine(line_no=1, quantity=Decimal(20))]))
    assert half["points"] == -60
    with pytest.raises(AgentError) as err:
        service.return_sale(ReturnRequest(original=orig, document=doc("NC-2"), reason="x",
                                          lines=[ReturnLine(line_no=1, quantity=Decimal(21))]))
    assert err.value.code == "reversal_exceeds_sale"
    prop, _ = service.return_sale(ReturnRequest(original=orig, document=doc("NC-3"), reason="x",
                                                amount=Decimal("995")))
    # 995 spread over what is left (26000 + 1990): line 2 gets 70.7413, line 1 the rest, 924.2587.
    # Line 1 cumulative: floor(120 x 26924.2587 / 52000) = 62, minus 60 already = 2; line 2: floor(1.03) = 1.
    assert prop["points"] == -(2 + 1)
    void, _ = service.void_sale(VoidRequest(original=orig, document=doc("NC-4"), reason="anulada"))
    assert half["points"] + prop["points"] + void["points"] == -149
    assert service.account("A1")["balance"]["points"] == 1000
    for request in (VoidRequest(original=orig, document=doc("NC-5"), reason="again"),
                    ReturnRequest(original=orig, document=doc("NC-6"), reason="x", amount=Decimal(1))):
        with pytest.raises(AgentError) as err:
            service.void_sale(request) if isinstance(request, VoidRequest) else service.return_sale(request)
        assert err.value.code == "sale_already_reversed"
    reversed_events = events(db, "points.reversed")
    assert len(reversed_events) == 3
    assert reversed_events[0]["original_receipt"]["number"] == "1001"
    assert reversed_events[0]["by_article_group"] == {"FUEL": -60}


def test_full_return_is_exact_negation_and_then_nothing_left(env):
    service, sessions, _, _ = env
    sessions.authorize("s1", "C1000")
    sold, _ = service.sale(sale_req("s1", "1001"))
    orig = Receipt(station=STATION, pos="P1", number="1001")
    full, _ = service.return_sale(ReturnRequest(original=orig, document=Receipt(station=STATION, pos="P1", number="NC"),
                                                reason="x", amount=Decimal("53990")))
    assert full["points"] == -sold["points"]
    with pytest.raises(AgentError) as err:
        service.void_sale(VoidRequest(original=orig, document=Receipt(station=STATION, pos="P1", number="NC2"),
                                      reason="x"))
    assert err.value.code == "sale_already_reversed"
    with pytest.raises(AgentError) as err:
        service.return_sale(ReturnRequest(original=Receipt(station=STATION, pos="P1", number="nope"),
                                          document=Receipt(station=STATION, pos="P1", number="NC3"),
                                          reason="x", amount=Decimal(1)))
    assert err.value.code == "sale_unknown"


def test_redeem_stock_atomic_low_stock_and_scheduled_request(env):
    service, sessions, _, db = env
    sessions.authorize("s1", "C1000")
    with pytest.raises(AgentError) as err:
        service.redeem(RedeemRequest(session_id="s1", reward_id="MUG"))
    assert err.value.code == "out_of_stock"
    assert service.account("A1")["balance"]["points"] == 1000 and count(db, "loyalty_ledger") == 0
    service.receive_stock(StockMovementRequest(reward_id="MUG", kind="consignment_transfer_in", quantity=2,
                                               document="TR-9"))
    with pytest.raises(AgentError) as err:
        service.receive_stock(StockMovementRequest(reward_id="MUG", kind="consignment_transfer_in", quantity=2,
                                                   document="TR-9"))
    assert err.value.code == "stock_document_already_booked"
    got, _ = service.redeem(RedeemRequest(session_id="s1", reward_id="MUG"), "r-1")
    assert got["stock_left"] == 1 and got["balance_after"] == 700
    assert len(events(db, "reward.stock_low")) == 1
    replay, replayed = service.redeem(RedeemRequest(session_id="s1", reward_id="MUG"), "r-1")
    assert replayed and replay["redemption_id"] == got["redemption_id"]
    with pytest.raises(AgentError) as err:
        service.redeem(RedeemRequest(session_id="s1", reward_id="BIKE"))
    assert err.value.code == "insufficient_points"
    service.redeem(RedeemRequest(session_id="s1", reward_id="MUG"))
    assert len(events(db, "reward.stock_low")) == 1  # alert once, when crossing the threshold
    with pytest.raises(AgentError):
        service.redeem(RedeemRequest(session_id="s1", reward_id="MUG"))
    assert [r["stock"] for r in service.catalog() if r["reward_id"] == "MUG"] == [0]
    sessions.authorize("s2", "FLEET-OWNER")
    # Scheduled delivery: no stock needed, a request event for head office's weekly order.
    service.apply_directory_delta(DirectoryDelta(seq=2, as_of=NOW, accounts=[AccountIn(
        account_id="FLEET", tier_id="SILVER", is_fleet=True,
        snapshot=SnapshotIn(balance=5000, expiring_next_close=0, as_of=NOW + timedelta(seconds=1)))]))
    bike, _ = service.redeem(RedeemRequest(session_id="s2", reward_id="BIKE"))
    assert bike["status"] == "requested" and len(events(db, "reward.requested")) == 1


def test_block_and_replace_keep_balance_and_refuse_blocked_card(env):
    service, sessions, _, db = env
    service.block_card("C1000", "perdida")
    sessions.authorize("s1", "C1000")
    with pytest.raises(AgentError) as err:
        service.sale(sale_req("s1", "5001"))
    assert err.value.code == "card_blocked"
    out = service.replace_card("C1000", ReplaceCardRequest(new_card="NEW-1", reason="perdida"))
    assert out["account_id"] == "A1"
    sessions.authorize("s2", "NEW-1")
    line = [SaleLine(sku="DIESEL", article_group="FUEL", quantity=Decimal(10), amount=Decimal(9000))]
    answer, _ = service.sale(sale_req("s2", "5002", line))
    assert answer["points"] == 15  # no first-use bonus for a replacement card
    assert service.account("A1")["balance"]["points"] == 1015
    assert [e["_type"] for e in events(db) if e["_type"].startswith("card.")] == ["card.blocked", "card.replaced"]


def test_messages_on_swipe_by_target_and_validity(env):
    service, sessions, _, _ = env
    window = {"valid_from": NOW - timedelta(days=1), "valid_to": NOW + timedelta(days=1)}
    service.apply_directory_delta(DirectoryDelta(seq=5, as_of=NOW, messages=[
        MessageIn(message_id="m-card", target_type="card", target_value="C1000", text_es="Hola tarjeta", **window),
        MessageIn(message_id="m-tier", target_type="tier", target_value="GOLD", text_es="Oro: doble", **window),
        MessageIn(message_id="m-all", target_type="all", text_es="Para todos", **window),
        MessageIn(message_id="m-other", target_type="account", target_value="FLEET", text_es="Flota", **window),
        MessageIn(message_id="m-old", target_type="all", text_es="Vencido", valid_from=NOW - timedelta(days=9),
                  valid_to=NOW - timedelta(days=2)),
    ]))
    sessions.authorize("s1", "C1000")
    info = service.swipe_info("s1")
    assert {m["message_id"] for m in info["messages"]} == {"m-card", "m-tier", "m-all"}
    assert info["tier"] == "Oro"


def test_directory_replay_ignored_and_snapshot_absorbs_local_movements(env):
    service, sessions, _, _ = env
    sessions.authorize("s1", "C1000")
    service.sale(sale_req("s1", "1001"))  # +149, ledger seq 1
    assert service.apply_directory_delta(DirectoryDelta(seq=1, as_of=NOW)) is False
    # Head office has counted our seq 1 in its new snapshot: 1,149 must not become 1,298.
    service.apply_directory_delta(DirectoryDelta(seq=7, as_of=NOW, accounts=[AccountIn(
        account_id="A1", tier_id="GOLD", partner_member_id="LP123456",
        snapshot=SnapshotIn(balance=1149, expiring_next_close=0, as_of=NOW + timedelta(minutes=5),
                            station_seq={STATION: 1, "ST99": 40}))]))
    assert service.account("A1")["balance"]["points"] == 1149
    service.sale(sale_req("s1", "1002"))
    assert service.account("A1")["balance"]["points"] == 1298


def test_movements_show_local_date_time_station_points(env):
    service, sessions, clock, _ = env
    sessions.authorize("s1", "C1000")
    line = [SaleLine(sku="DIESEL", article_group="FUEL", quantity=Decimal(1), amount=Decimal(900))]
    for i in range(35):
        clock.at = NOW + timedelta(minutes=i)
        service.sale(sale_req("s1", f"M{i}", line))
    out = service.movements("A1")["movements"]
    assert len(out) == 30
    assert out[0] == {"movement_id": out[0]["movement_id"], "kind": "earn", "date": "2026-03-10",
                      "time": "12:34:00", "station": STATION, "points": 1}


def test_simulate_books_nothing(env):
    service, sessions, _, db = env
    sessions.authorize("s1", "C1000")
    ev = service.simulate(SimulateRequest(session_id="s1", lines=sale_req("s1", "x").lines))
    assert ev.total_points == 149
    assert service.simulate(SimulateRequest(lines=sale_req("s1", "x").lines)).total_points == 80 + 19
    assert count(db, "loyalty_sales") == 0
    assert count(db, "loyalty_ledger") == 0


def test_with_the_real_swipe_sessions_of_the_cards_feature(tmp_path):
    """agent.cards.sessions.SwipeSessions itself (open -> PIN -> authorized); only its PIN store is
    a stand-in accepting PIN 2468, since real PINs need a head-office-signed bundle."""
    from agent.cards.events import EventHub
    from agent.cards.sessions import SwipeSessions

    class AcceptPin:
        def verify(self, attendant_id: str, pin: str) -> None:
            if pin != "2468":
                raise AgentError("pin_wrong", "PIN incorrecto.", "Wrong PIN.", status=403)

    service, _, _, db = make_service(tmp_path, NOW)
    real = SwipeSessions(AcceptPin(), EventHub())  # type: ignore[arg-type]
    service.sessions = real
    swipe = real.open(card_id="C1000", source="magstripe", reader="mag-1", card_type="track2")
    with pytest.raises(AgentError) as err:
        service.sale(sale_req(swipe.id, "7001"))
    assert err.value.code == "swipe_session_not_authorized"
    real.authorize(swipe.id, "att-3", "2468")
    answer, _ = service.sale(sale_req(swipe.id, "7001"))
    assert answer["points"] == 149
    assert events(db, "points.earned")[0]["attendant_id"] == "att-3"
    db.close()
