"""Loyalty HTTP routes through the real FastAPI app (auth, problem+json, idempotency headers).

Swipe sessions: tests.loyalty_fixtures.FakeSessions stands in for the cards feature.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from tests.loyalty_fixtures import STATION, events, make_app

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)
SALE = {
    "session_id": "s1",
    "receipt": {"station": STATION, "pos": "P1", "number": "9001"},
    "lines": [{"sku": "PREMIUM95", "article_group": "FUEL", "quantity": "40", "amount": "52000"}],
}


@pytest.fixture
def api(tmp_path):
    app, token, sessions, clock, db = make_app(tmp_path, NOW)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, sessions, db
    db.close()


def test_sale_replay_and_conflicts_over_http(api):
    client, sessions, db = api
    sessions.authorize("s1", "C1000")
    first = client.post("/v1/sales", json=SALE, headers={"Idempotency-Key": "k1"})
    assert first.status_code == 201, first.text
    assert first.json()["points"] == 120 and first.json()["balance"]["points"] == 1120
    again = client.post("/v1/sales", json=SALE, headers={"Idempotency-Key": "k1"})
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["sale_id"] == first.json()["sale_id"]
    other = client.post("/v1/sales", json=SALE | {"lines": SALE["lines"] * 2}, headers={"Idempotency-Key": "k1"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    replayed_receipt = client.post("/v1/sales", json=SALE, headers={"Idempotency-Key": "k2"})
    assert replayed_receipt.status_code == 409 and replayed_receipt.json()["code"] == "receipt_already_booked"
    assert len(events(db, "points.earned")) == 1


def test_bad_input_is_a_problem_and_books_nothing(api):
    client, sessions, db = api
    sessions.authorize("s1", "C1000")
    bad = SALE | {"lines": [{"sku": "X", "quantity": "-3", "amount": "10"}]}
    r = client.post("/v1/sales", json=bad)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    r = client.post("/v1/sales", json=SALE | {"session_id": "nope"})
    assert r.status_code == 403
    assert client.post("/v1/sales", json=SALE, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert events(db, "points.earned") == []


def test_simulate_accounts_movements_returns_and_fleet_masking(api):
    client, sessions, _ = api
    sessions.authorize("s1", "C1000")
    sim = client.post("/v1/sales/simulate", json={"session_id": "s1", "lines": SALE["lines"]})
    assert sim.status_code == 200 and sim.json()["total_points"] == 120
    assert client.post("/v1/sales", json=SALE).status_code == 201
    ret = client.post("/v1/sales/returns", json={
        "original": SALE["receipt"], "document": {"station": STATION, "pos": "P1", "number": "NC1"},
        "reason": "devolución", "lines": [{"line_no": 1, "quantity": "40"}]})
    assert ret.status_code == 201 and ret.json()["points"] == -120
    void = client.post("/v1/sales/voids", json={
        "original": SALE["receipt"], "document": {"station": STATION, "pos": "P1", "number": "NC2"}, "reason": "x"})
    assert void.status_code == 409 and void.json()["code"] == "sale_already_reversed"
    moves = client.get("/v1/accounts/A1/movements").json()["movements"]
    assert [m["points"] for m in moves] == [-120, 120]
    sessions.authorize("truck", "TRUCK-1")
    acct = client.get("/v1/accounts/FLEET", params={"session_id": "truck"})
    assert acct.status_code == 200 and acct.json()["balance"] == "masked"
    redeem = client.post("/v1/rewards/redemptions", json={"session_id": "truck", "reward_id": "BIKE"},
                         headers={"Accept-Language": "en"})
    assert redeem.status_code == 403 and redeem.json()["code"] == "fleet_card_cannot_redeem"


def test_cards_and_rewards_routes(api):
    client, sessions, _ = api
    issued = client.post("/v1/loyalty/cards", json={"card_number": "NEW-1"})
    assert issued.status_code == 201
    assert client.post("/v1/loyalty/cards/NEW-1/block", json={"reason": "perdida"}).json()["state"] == "blocked"
    rep = client.post("/v1/loyalty/cards/NEW-1/replace", json={"new_card": "NEW-2", "reason": "perdida"})
    assert rep.status_code == 200 and rep.json()["account_id"] == issued.json()["account_id"]
    assert client.post("/v1/rewards/stock", json={"reward_id": "MUG", "kind": "receipt", "quantity": 3,
                                                  "document": "G-1"}).status_code == 201
    items = {i["reward_id"]: i for i in client.get("/v1/rewards").json()["items"]}
    assert items["MUG"]["stock"] == 3
    sessions.authorize("s1", "C1000")
    r = client.post("/v1/rewards/redemptions", json={"session_id": "s1", "reward_id": "MUG", "quantity": 2},
                    headers={"Idempotency-Key": "red-1"})
    assert r.status_code == 201 and r.json()["stock_left"] == 1
    swipe = client.get("/v1/loyalty/swipes/s1").json()
    assert swipe["balance"]["points"] == 400
