"""Rewards at the station (seed 002) through the real app: stock in and out, counts with their
differences, the movement list with filters, pending scheduled requests with the warehouse slip,
and the weekly replenishment record. Swipes: tests.loyalty_fixtures.FakeSessions."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from tests.conftest import MARIA
from tests.loyalty_fixtures import STATION, events, make_app

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)


@pytest.fixture
def api(tmp_path):
    app, token, sessions, clock, db = make_app(tmp_path, NOW)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, sessions, clock, db
    db.close()


def stock(client: TestClient, kind: str, quantity: int, document: str, reward: str = "MUG"):
    return client.post("/v1/rewards/stock", json={"reward_id": reward, "kind": kind, "quantity": quantity,
                                                  "document": document})


def test_stock_in_out_count_and_movements(api):
    client, sessions, clock, db = api
    assert stock(client, "receipt", 10, "R1").json()["stock"] == 10
    out = stock(client, "transfer_out", 3, "T1")
    assert out.status_code == 201 and out.json()["quantity"] == -3 and out.json()["stock"] == 7
    too_many = stock(client, "transfer_out", 20, "T2")
    assert too_many.status_code == 409 and too_many.json()["code"] == "out_of_stock"
    clock.at = NOW + timedelta(hours=1)
    assert stock(client, "shipment_receipt", 5, "S1").json()["stock"] == 12
    again = stock(client, "shipment_receipt", 5, "S1")
    assert again.status_code == 409 and again.json()["code"] == "stock_document_already_booked"
    count = client.post("/v1/rewards/stock/counts", json={"reward_id": "MUG", "counted": 11, "document": "AUD-1",
                                                         "note": "una taza rota"})
    assert count.status_code == 201, count.text
    assert (count.json()["expected"], count.json()["counted"], count.json()["difference"]) == (12, 11, -1)
    assert [i["stock"] for i in client.get("/v1/rewards").json()["items"] if i["reward_id"] == "MUG"] == [11]
    scheduled = stock(client, "receipt", 1, "R9", reward="BIKE")
    assert scheduled.status_code == 422 and scheduled.json()["code"] == "reward_not_stocked"

    sessions.authorize("s1", "C1000")
    assert client.post("/v1/rewards/redemptions", json={"session_id": "s1", "reward_id": "MUG"}).status_code == 201
    everything = client.get("/v1/rewards/stock/movements").json()["items"]
    assert [m["kind"] for m in everything] == ["grant", "count", "shipment_receipt", "transfer_out", "receipt"]
    assert everything[1]["counted"] == 11 and everything[1]["expected"] == 12 and everything[1]["note"] == "una taza rota"
    grants = client.get("/v1/rewards/stock/movements", params={"kind": "grant"}).json()["items"]
    assert len(grants) == 1 and grants[0]["quantity"] == -1 and grants[0]["reference_id"]
    early = client.get("/v1/rewards/stock/movements",
                       params={"from": NOW.isoformat(), "to": (NOW + timedelta(minutes=30)).isoformat()}).json()
    assert [m["document"] for m in early["items"]] == ["T1", "R1"]
    assert client.get("/v1/rewards/stock/movements", params={"reward_id": "BIKE"}).json()["items"] == []
    bad = client.get("/v1/rewards/stock/movements", params={"kind": "theft"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_kind"
    naive = client.get("/v1/rewards/stock/movements", params={"from": "2026-03-10T10:00:00"})
    assert naive.status_code == 422 and naive.json()["code"] == "invalid_date"
    # Paged with a cursor: two pages of two and one of one give the same five, in the same order.
    seen, cursor = [], None
    for expected_size in (2, 2, 1):
        page = client.get("/v1/rewards/stock/movements", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) == expected_size
        seen += page.json()["items"]
        cursor = page.json()["next_cursor"]
    assert cursor is None and [m["movement_id"] for m in seen] == [m["movement_id"] for m in everything]
    broken = client.get("/v1/rewards/stock/movements", params={"cursor": "not-a-cursor"})
    assert broken.status_code == 422 and broken.json()["code"] == "invalid_cursor"
    counted = events(db, "reward.stock_counted")
    assert counted[0]["difference"] == -1 and counted[0]["station"] == STATION


def test_grants_make_a_replenishment_record_consolidated_once(api):
    client, sessions, _, db = api
    stock(client, "receipt", 10, "R1")
    for session in ("s1", "s2"):
        sessions.authorize(session, "C1000")
        assert client.post("/v1/rewards/redemptions", json={"session_id": session, "reward_id": "MUG"}).status_code == 201
    open_ = client.get("/v1/rewards/replenishment").json()["items"]
    assert [(i["reward_id"], i["quantity"], i["grants"]) for i in open_] == [("MUG", 2, 2)]
    done = client.post("/v1/rewards/replenishment")
    assert done.status_code == 201 and done.json()["lines"][0]["quantity"] == 2
    assert client.get("/v1/rewards/replenishment").json()["items"] == []
    empty = client.post("/v1/rewards/replenishment")
    assert empty.status_code == 409 and empty.json()["code"] == "nothing_to_replenish"
    requested = events(db, "reward.replenishment_requested")
    assert requested == [requested[0]] and requested[0]["lines"] == [{"reward_id": "MUG", "quantity": 2}]
    grants = client.get("/v1/rewards/stock/movements", params={"kind": "grant"}).json()["items"]
    assert {g["replenishment_id"] for g in grants} == {done.json()["replenishment_id"]}


def test_scheduled_requests_list_and_event_carry_the_warehouse_slip(api):
    client, sessions, _, db = api
    maria = client.post("/v1/customers", json=MARIA).json()["id"]
    big = {"customer_id": maria, "receipt": {"station": STATION, "pos": "P1", "number": "1"},
           "lines": [{"sku": "PREMIUM95", "article_group": "FUEL", "quantity": "500", "amount": "650000"}]}
    assert client.post("/v1/sales", json=big).json()["points"] == 1000
    assert client.post("/v1/loyalty/cards", json={"card_number": "NEW-1", "customer_id": maria}).status_code == 201
    sessions.authorize("s1", "NEW-1")
    redeemed = client.post("/v1/rewards/redemptions", json={"session_id": "s1", "reward_id": "BIKE"})
    assert redeemed.status_code == 201 and redeemed.json()["status"] == "requested"
    pending = client.get("/v1/rewards/requests").json()["items"]
    assert len(pending) == 1 and pending[0]["redemption_id"] == redeemed.json()["redemption_id"]
    slip = pending[0]["slip"]
    assert slip["reward_name"] == "Bicicleta" and slip["quantity"] == 1 and slip["card"] == "*EW-1"
    assert slip["customer"]["name"] == "María Peña Soto" and slip["customer"]["document"] == "CL RUT 12.345.678-5"
    assert slip["customer"]["phones"] == ["+56987654321"]
    event = events(db, "reward.requested")[0]
    assert event["slip"] == slip
    # A directory-only account (no local customer) still gets a slip, without customer data.
    sessions.authorize("s2", "C1000")
    assert client.post("/v1/rewards/redemptions", json={"session_id": "s2", "reward_id": "BIKE"}).status_code == 201
    second = client.get("/v1/rewards/requests").json()["items"][1]["slip"]
    assert second["customer"] is None and second["account_id"] == "A1"
