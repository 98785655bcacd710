"""Sales identified by the customer's document or id (seeds 000, 003), through the real app over HTTP.

The customer is enrolled through ``POST /v1/customers`` and earns through ``POST /v1/sales``
on a real SQLite file. Swipes come from tests.loyalty_fixtures.FakeSessions (the card reader
and PIN feature is exercised end to end in tests/test_try_it.py and tests/test_station_e2e.py).
"""
from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from tests.conftest import MARIA
from tests.loyalty_fixtures import STATION, events, make_app

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=timezone.utc)
LINES = [{"sku": "PREMIUM95", "article_group": "FUEL", "quantity": "40", "amount": "52000"}]  # 40 x promo 2 = 80
MARIA_DOC = {"document_country": "CL", "document_type": "RUT", "document_number": "12345678-5"}  # another spelling


def sale(number: str, **who: object) -> dict:
    return {**who, "receipt": {"station": STATION, "pos": "P1", "number": number}, "lines": LINES}


@pytest.fixture
def api(tmp_path):
    app, token, sessions, clock, db = make_app(tmp_path, NOW)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        client.headers["Authorization"] = f"Bearer {token}"
        maria = client.post("/v1/customers", json=MARIA)
        assert maria.status_code == 201, maria.text
        yield client, sessions, db, maria.json()["id"]
    db.close()


def count(db, sql: str, *args: object) -> int:
    return db.read(lambda c: c.execute(sql, args).fetchone()[0])


def test_sale_by_document_opens_one_account_accrues_miles_and_is_in_the_history(api):
    client, _, db, maria = api
    first = client.post("/v1/sales", json=sale("1", customer=MARIA_DOC), headers={"Idempotency-Key": "d1"})
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["customer_id"] == maria and body["identified_by"] == "document" and body["card"] is None
    assert body["points"] == 80 and body["balance"]["points"] == 80
    assert body["partner_miles"] == 80  # María opted in to LATAM Pass with member 123456 at enrollment
    assert events(db, "partner.accrual")[0]["member_id"] == "123456"
    second = client.post("/v1/sales", json=sale("2", customer_id=maria))
    assert second.status_code == 201, second.text
    assert second.json()["account_id"] == body["account_id"] and second.json()["identified_by"] == "customer_id"
    assert second.json()["balance"]["points"] == 160
    assert count(db, "SELECT COUNT(*) FROM loyalty_accounts WHERE customer_id = ?", maria) == 1
    opened = events(db, "account.created")
    assert len(opened) == 1 and opened[0]["customer_id"] == maria and opened[0]["opened_by"] == "sale"
    earned = events(db, "points.earned")
    assert [e["identified_by"] for e in earned] == ["document", "customer_id"]
    assert all(e["card_number"] is None and e["customer_id"] == maria for e in earned)
    replay = client.post("/v1/sales", json=sale("1", customer=MARIA_DOC), headers={"Idempotency-Key": "d1"})
    assert replay.headers.get("Idempotent-Replayed") == "true" and replay.json()["sale_id"] == body["sale_id"]

    page1 = client.get(f"/v1/customers/{maria}/sales", params={"limit": 1})
    assert page1.status_code == 200, page1.text
    assert [s["receipt"]["number"] for s in page1.json()["items"]] == ["2"]  # newest first
    assert page1.json()["items"][0]["lines"][0]["sku"] == "PREMIUM95"
    page2 = client.get(f"/v1/customers/{maria}/sales", params={"limit": 1, "cursor": page1.json()["next_cursor"]})
    assert [s["receipt"]["number"] for s in page2.json()["items"]] == ["1"]
    assert page2.json()["next_cursor"] is None
    bad = client.get(f"/v1/customers/{maria}/sales", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"


def test_unknown_or_malformed_customer_is_refused_and_books_nothing(api):
    client, _, db, _ = api
    unknown = client.post("/v1/sales", json=sale("1", customer={**MARIA_DOC, "document_number": "11.111.111-1"}))
    assert unknown.status_code == 404 and unknown.json()["code"] == "customer_not_found"
    assert "11.111.111-1" in unknown.json()["detail"]  # names the document the POS sent
    no_id = client.post("/v1/sales", json=sale("1", customer_id="NOPE"), headers={"Accept-Language": "en"})
    assert no_id.status_code == 404 and "NOPE" in no_id.json()["detail"]
    typo = client.post("/v1/sales", json=sale("1", customer={**MARIA_DOC, "document_number": "12.345.678-9"}))
    assert typo.status_code == 422 and typo.json()["errors"][0]["field"] == "customer.document_number"
    both = client.post("/v1/sales", json=sale("1", customer=MARIA_DOC, customer_id="X"))
    assert both.status_code == 422
    nobody = client.post("/v1/sales", json=sale("1"))
    assert nobody.status_code == 422
    history = client.get("/v1/customers/NOPE/sales")
    assert history.status_code == 404 and history.json()["code"] == "customer_not_found"
    assert events(db, "points.earned") == [] and count(db, "SELECT COUNT(*) FROM loyalty_sales") == 0
    assert count(db, "SELECT COUNT(*) FROM loyalty_accounts WHERE origin = 'local'") == 0


def test_card_and_document_that_disagree_are_a_409(api):
    client, sessions, db, maria = api
    issued = client.post("/v1/loyalty/cards", json={"card_number": "NEW-1", "customer_id": maria})
    assert issued.status_code == 201, issued.text
    sessions.authorize("other", "C1000")  # account A1: not María's
    clash = client.post("/v1/sales", json=sale("1", session_id="other", customer=MARIA_DOC))
    assert clash.status_code == 409 and clash.json()["code"] == "card_customer_mismatch"
    assert events(db, "points.earned") == []
    sessions.authorize("hers", "NEW-1")
    ok = client.post("/v1/sales", json=sale("1", session_id="hers", customer=MARIA_DOC))
    assert ok.status_code == 201, ok.text
    assert ok.json()["identified_by"] == "card" and ok.json()["customer_id"] == maria
    assert ok.json()["account_id"] == issued.json()["account_id"]
    # A swipe alone on her card is in her history too.
    assert client.post("/v1/sales", json=sale("2", session_id="hers")).status_code == 201
    numbers = [s["receipt"]["number"] for s in client.get(f"/v1/customers/{maria}/sales").json()["items"]]
    assert sorted(numbers) == ["1", "2"]


def test_a_card_issued_later_joins_the_account_opened_by_a_sale(api):
    client, _, db, maria = api
    booked = client.post("/v1/sales", json=sale("1", customer_id=maria)).json()
    first = client.post("/v1/loyalty/cards", json={"card_number": "CARD-A", "customer_id": maria})
    assert first.status_code == 201 and first.json()["account_id"] == booked["account_id"]
    assert first.json()["role"] == "primary"  # the account had no card yet
    second = client.post("/v1/loyalty/cards", json={"card_number": "CARD-B", "customer_id": maria})
    assert second.status_code == 201 and second.json()["role"] == "additional"
    assert second.json()["account_id"] == booked["account_id"]
    explicit = client.post("/v1/loyalty/cards", json={"card_number": "CARD-C", "customer_id": maria, "role": "primary"})
    assert explicit.status_code == 409 and explicit.json()["code"] == "customer_has_primary_card"
    assert explicit.json()["account_id"] == booked["account_id"]
    assert count(db, "SELECT COUNT(*) FROM loyalty_accounts WHERE customer_id = ?", maria) == 1
    assert count(db, "SELECT COUNT(*) FROM loyalty_cards WHERE card_number = 'CARD-C'") == 0
    unknown = client.post("/v1/loyalty/cards", json={"card_number": "CARD-D", "customer_id": "NOPE"})
    assert unknown.status_code == 404 and unknown.json()["code"] == "customer_not_found"


def test_returns_and_voids_check_the_named_customer(api):
    client, _, db, maria = api
    other = copy.deepcopy(MARIA)
    other["document"]["number"] = "11.111.111-1"
    other["consents"] = {"offers": False}
    other_id = client.post("/v1/customers", json=other).json()["id"]
    assert client.post("/v1/sales", json=sale("1", customer=MARIA_DOC)).status_code == 201
    refund = {"original": {"station": STATION, "pos": "P1", "number": "1"},
              "document": {"station": STATION, "pos": "P1", "number": "NC1"}, "reason": "garantía",
              "lines": [{"line_no": 1, "quantity": "10"}]}
    wrong = client.post("/v1/sales/returns", json=refund | {"customer_id": other_id})
    assert wrong.status_code == 409 and wrong.json()["code"] == "sale_other_customer"
    assert events(db, "points.reversed") == []
    right = client.post("/v1/sales/returns", json=refund | {"customer": MARIA_DOC})
    assert right.status_code == 201 and right.json()["points"] == -20 and right.json()["customer_id"] == maria
    void = client.post("/v1/sales/voids", json={"original": refund["original"], "reason": "anulada",
                                                "document": {"station": STATION, "pos": "P1", "number": "NC2"},
                                                "customer_id": maria})
    assert void.status_code == 201 and void.json()["points"] == -60
    # The other customer has no partner opt-in: a sale by their document earns, with no miles.
    theirs = client.post("/v1/sales", json=sale("2", customer_id=other_id))
    assert theirs.status_code == 201 and theirs.json()["partner_miles"] is None


def test_withdrawn_partner_opt_in_stops_miles_and_simulate_uses_the_customer(api):
    client, _, db, maria = api
    sim = client.post("/v1/sales/simulate", json={"customer": MARIA_DOC, "lines": LINES})
    assert sim.status_code == 200 and sim.json()["total_points"] == 80
    assert count(db, "SELECT COUNT(*) FROM loyalty_accounts") == 2  # simulate opens nothing (A1, FLEET)
    patched = client.patch(f"/v1/customers/{maria}", json={"consents": {"partner_programs": [
        {"name": "LATAM Pass", "member_id": "123456", "value": False}]}})
    assert patched.status_code == 200, patched.text
    booked = client.post("/v1/sales", json=sale("1", customer_id=maria))
    assert booked.status_code == 201 and booked.json()["partner_miles"] is None
    assert events(db, "partner.accrual") == []


def test_redemption_still_needs_a_swipe(api):
    client, _, db, maria = api
    refused = client.post("/v1/rewards/redemptions", json={"customer_id": maria, "reward_id": "MUG"})
    assert refused.status_code == 422  # no session_id: the field is required, customer is not accepted
    assert events(db, "reward.redeemed") == []


def test_navigation_and_one_display_summary_shape(api):
    client, sessions, db, maria = api
    assert client.post("/v1/sales", json=sale("1", customer=MARIA_DOC)).status_code == 201
    issued = client.post("/v1/loyalty/cards", json={"card_number": "6037990000001234", "customer_id": maria}).json()
    card = client.get("/v1/loyalty/cards/6037990000001234")
    assert card.status_code == 200, card.text
    body = card.json()
    assert (body["role"], body["state"], body["blocked"]) == ("primary", "issued", False)
    assert body["account_id"] == issued["account_id"] and body["customer_id"] == maria

    looked_up = client.get("/v1/customers", params={"document_country": "CL", "document_type": "RUT",
                                                    "document_number": "12.345.678-5"}).json()
    sessions.authorize("s1", "6037990000001234")
    swiped = client.get("/v1/loyalty/swipes/s1").json()
    account = client.get(f"/v1/accounts/{issued['account_id']}").json()
    views = [looked_up["display"], swiped["display"], account["display"], body["display"]]
    assert all(set(v) == set(views[0]) for v in views)  # one shape
    for view in views:
        assert view["display_name"] == "María Peña Soto" and view["document"] == "RUT 12.345.678-5"
        assert view["balance"]["points"] == 80 and view["customer_id"] == maria
        offers, partner = view["consents_to_ratify"]
        assert offers["consent"] == "offers" and offers["value"] is True
        assert partner["program"] == "LATAM Pass" and partner["member_id"] == "123456"
    assert swiped["display"]["card"] == "************1234"

    accounts = client.get(f"/v1/customers/{maria}").json()["accounts"]
    assert [a["account_id"] for a in accounts] == [issued["account_id"]] and accounts[0]["primary"]
    assert accounts[0]["cards"] == [{"card": "************1234", "role": "primary", "state": "issued",
                                     "blocked": False}]
    assert client.post("/v1/loyalty/cards/6037990000001234/block", json={"reason": "perdida"}).status_code == 200
    assert client.get("/v1/loyalty/cards/6037990000001234").json()["blocked"] is True
    unknown = client.get("/v1/loyalty/cards/999")
    assert unknown.status_code == 404 and unknown.json()["code"] == "card_unknown"
    # A card known only from head office: no local customer, the summary says so with nulls.
    directory_card = client.get("/v1/loyalty/cards/C1000").json()
    assert directory_card["customer_id"] is None and directory_card["display"]["display_name"] is None
    assert directory_card["display"]["balance"]["points"] == 1000 and directory_card["display"]["tier"] == "Oro"


def test_fleet_vehicle_card_view_masks_the_balance(api):
    client, *_ = api
    truck = client.get("/v1/loyalty/cards/TRUCK-1").json()
    assert truck["role"] == "vehicle" and truck["display"]["balance"] == "masked"
