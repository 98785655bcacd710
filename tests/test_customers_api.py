"""The customer API over the real app and a real SQLite file (FastAPI's in-process client)."""
from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.customers.models import CustomerCreate
from agent.station import Station
from tests.conftest import MARIA


def counts(services: Station) -> tuple[int, int, int]:
    return services.db.read(lambda c: (
        c.execute("SELECT count(*) FROM customers").fetchone()[0],
        c.execute("SELECT count(*) FROM customer_changes").fetchone()[0],
        c.execute("SELECT count(*) FROM outbox").fetchone()[0],
    ))


def body(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(MARIA)
    data.update(changes)
    return data


def test_create_returns_201_with_compact_document_and_queues_an_event(client: TestClient, services: Station) -> None:
    r = client.post("/v1/customers", json=MARIA)
    assert r.status_code == 201, r.text
    customer = r.json()
    assert r.headers["location"] == f"/v1/customers/{customer['id']}"
    assert customer["document"] == {"country": "CL", "type": "RUT", "number": "123456785", "display": "12.345.678-5"}
    assert customer["phones"] == [{"number": "+56987654321", "kind": "mobile"}]
    assert customer["consents"]["offers"]["value"] is True
    assert customer["consents"]["partner_programs"][0]["member_id"] == "123456"
    event = services.db.read(lambda c: c.execute("SELECT type, payload FROM outbox").fetchone())
    assert event["type"] == "customer.created"
    assert customer["id"] in event["payload"]


@pytest.mark.parametrize("spelling", ["12.345.678-5", "12345678-5", "123456785"])
def test_any_accepted_spelling_finds_the_customer(client: TestClient, spelling: str) -> None:
    created = client.post("/v1/customers", json=MARIA).json()
    r = client.get("/v1/customers", params={"document_country": "CL", "document_type": "RUT", "document_number": spelling})
    assert r.status_code == 200
    assert r.json()["id"] == created["id"]


def test_lookup_of_an_unknown_document_is_404_problem(client: TestClient) -> None:
    r = client.get("/v1/customers", params={"document_country": "CL", "document_type": "RUT", "document_number": "11.111.111-1"})
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "customer_not_found"


def test_duplicate_document_is_409_with_existing_id(client: TestClient, services: Station) -> None:
    first = client.post("/v1/customers", json=MARIA).json()
    before = counts(services)
    r = client.post("/v1/customers", json=body(document={"country": "CL", "type": "RUT", "number": "12345678-5"}))
    assert r.status_code == 409
    assert r.json()["customer_id"] == first["id"]
    assert counts(services) == before


def test_a_leading_zero_finds_the_same_customer_and_cannot_enroll_a_second_one(client: TestClient) -> None:
    created = client.post("/v1/customers", json=body(document={"country": "CL", "type": "RUT", "number": "1.234.567-4"}))
    assert created.status_code == 201 and created.json()["document"]["number"] == "12345674"
    found = client.get("/v1/customers", params={"document_country": "CL", "document_type": "RUT",
                                                "document_number": "01.234.567-4"})
    assert found.status_code == 200 and found.json()["id"] == created.json()["id"]
    again = client.post("/v1/customers", json=body(document={"country": "CL", "type": "RUT", "number": "01234567-4"}))
    assert again.status_code == 409 and again.json()["customer_id"] == created.json()["id"]


def test_cuil_and_cuit_of_one_person_are_one_customer(client: TestClient) -> None:
    person = body(document={"country": "AR", "type": "CUIT", "number": "20-26756539-3"})
    created = client.post("/v1/customers", json=person)
    assert created.status_code == 201, created.text
    found = client.get("/v1/customers", params={"document_country": "AR", "document_type": "CUIL",
                                                "document_number": "20267565393"})
    assert found.status_code == 200 and found.json()["document"]["type"] == "CUIT"
    again = client.post("/v1/customers", json=body(document={"country": "AR", "type": "CUIL", "number": "20-26756539-3"}))
    assert again.status_code == 409 and again.json()["customer_id"] == created.json()["id"]


def test_wrong_check_digit_is_422_naming_the_field_in_spanish_and_english(client: TestClient, services: Station) -> None:
    bad = body(document={"country": "CL", "type": "RUT", "number": "12.345.678-9"})
    es = client.post("/v1/customers", json=bad).json()
    en = client.post("/v1/customers", json=bad, headers={"Accept-Language": "en-US,en;q=0.9"}).json()
    assert es["status"] == 422 and es["code"] == "validation_failed"
    assert es["errors"] == [{"field": "document.number", "code": "invalid_check_digit",
                             "message": "El dígito verificador del RUT no es válido."}]
    assert en["errors"][0]["message"] == "The RUT check digit is wrong."
    assert counts(services) == (0, 0, 0)
    # q-values count: Spanish ranked first stays Spanish even when English is listed first.
    ranked = client.post("/v1/customers", json=bad, headers={"Accept-Language": "en;q=0.1, es;q=0.9"}).json()
    assert ranked["errors"][0]["message"] == "El dígito verificador del RUT no es válido."
    # The lookup reports the same condition the same way as the create.
    lookup = client.get("/v1/customers", params={"document_country": "CL", "document_type": "RUT",
                                                 "document_number": "12.345.678-9"}).json()
    assert lookup["code"] == "validation_failed"
    assert lookup["errors"] == [{"field": "document_number", "code": "invalid_check_digit",
                                 "message": "El dígito verificador del RUT no es válido."}]


def test_a_withdrawn_consent_is_recorded_even_when_the_sync_queue_is_full(client: TestClient,
                                                                         services: Station) -> None:
    from agent.store.outbox import configure_budget

    created = client.post("/v1/customers", json=MARIA).json()
    services.db.write(lambda c: configure_budget(c, 1, None))
    refused = client.patch(f"/v1/customers/{created['id']}", json={"first_name": "Mariana"})
    assert refused.status_code == 507 and refused.json()["code"] == "outbox_full"  # business work waits
    r = client.patch(f"/v1/customers/{created['id']}", json={"consents": {"offers": False}})
    assert r.status_code == 200 and r.json()["consents"]["offers"]["value"] is False


def test_a_json_body_sent_as_text_is_415_naming_the_content_type(client: TestClient, services: Station) -> None:
    import json

    r = client.post("/v1/customers", content=json.dumps(MARIA).encode(), headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["code"] == "unsupported_media_type"
    assert "application/json" in r.json()["detail"]
    assert counts(services) == (0, 0, 0)


def test_a_choice_error_is_all_spanish(client: TestClient) -> None:
    r = client.post("/v1/customers", json=body(sex="Q")).json()
    assert r["errors"][0]["field"] == "sex"
    assert r["errors"][0]["message"] == "Valor no permitido; use 'F', 'M' o 'X'."


def test_customer_without_phone_is_accepted(client: TestClient) -> None:
    r = client.post("/v1/customers", json=body(phones=[]))
    assert r.status_code == 201
    assert r.json()["phones"] == []


def test_required_fields_are_configurable_per_country(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.api.app import create_app
    from agent.station import build_station
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, enrollment={"required_fields": {"CL": ["first_name", "email", "phones"]}})
    services = build_station(settings)
    try:
        token = services.tokens.create("pos-9")
        with TestClient(create_app(settings, services), base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as c:
            r = c.post("/v1/customers", json=body(phones=[], email=None))
            assert r.status_code == 422
            assert {e["field"] for e in r.json()["errors"]} == {"email", "phones"}
            assert c.post("/v1/customers", json=body(first_surname=None)).status_code == 201
    finally:
        services.close()


def test_a_field_made_mandatory_later_does_not_block_other_updates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.api.app import create_app
    from agent.station import build_station
    from tests.conftest import make_settings

    data = tmp_path / "data"
    services = build_station(make_settings(data))
    token = services.tokens.create("pos-9")
    created = services.customers.create(CustomerCreate.model_validate(body(birth_date=None)), "test")
    services.close()
    settings = make_settings(data, enrollment={"required_fields": {"CL": ["first_name", "birth_date"]}})
    services = build_station(settings)
    try:
        with TestClient(create_app(settings, services), base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as c:
            r = c.patch(f"/v1/customers/{created.id}", json={"phones": [{"number": "+56 9 8765 1111", "kind": "mobile"}]})
            assert r.status_code == 200, r.text
            r = c.patch(f"/v1/customers/{created.id}", json={"first_name": None})  # clearing one still refused
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "first_name"
            # A new document (maybe of another country) brings the whole minimum again.
            r = c.patch(f"/v1/customers/{created.id}",
                        json={"document": {"country": "CL", "type": "RUT", "number": "11.111.111-1"}})
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "birth_date"
            r = c.post("/v1/customers", json=body(document={"country": "CL", "type": "RUT", "number": "11.111.111-1"},
                                                   birth_date=None))
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "birth_date"
    finally:
        services.close()


def test_company_needs_business_name_and_tax_id(client: TestClient) -> None:
    r = client.post("/v1/customers", json={"document": {"country": "CO", "type": "CC", "number": "79123456"},
                                          "kind": "juridica"})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"business_name", "tax_id"}
    r = client.post("/v1/customers", json={"document": {"country": "CO", "type": "NIT", "number": "900.373.115-3"},
                                          "kind": "juridica", "business_name": "Transportes Andinos S.A.S."})
    assert r.status_code == 201, r.text
    assert r.json()["document"]["number"] == "9003731153"


def test_patch_is_partial_and_recorded_in_history(client: TestClient, services: Station) -> None:
    created = client.post("/v1/customers", json=MARIA).json()
    r = client.patch(f"/v1/customers/{created['id']}", json={"phones": [{"number": "22 345 6789", "kind": "fixed"}]},
                     headers={"X-Attendant-Id": "att-7"})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["phones"] == [{"number": "+56223456789", "kind": "fixed"}]
    assert updated["first_name"] == "María" and updated["version"] == 2
    changes = client.get(f"/v1/customers/{created['id']}/changes", params={"period": "week"}).json()
    phone_changes = [c for c in changes["items"] if c["field"] == "phones"]
    assert phone_changes[-1]["old"] == [{"number": "+56987654321", "kind": "mobile"}]
    assert phone_changes[-1]["new"] == [{"number": "+56223456789", "kind": "fixed"}]
    assert phone_changes[-1]["actor"] == "pos:pos-1/attendant:att-7"
    types = services.db.read(lambda c: [r[0] for r in c.execute("SELECT type FROM outbox ORDER BY seq")])
    assert types == ["customer.created", "customer.updated"]


def test_patch_with_no_real_change_records_nothing(client: TestClient, services: Station) -> None:
    created = client.post("/v1/customers", json=MARIA).json()
    before = counts(services)
    r = client.patch(f"/v1/customers/{created['id']}", json={"first_name": "María"})
    assert r.status_code == 200 and r.json()["version"] == 1
    assert counts(services) == before


def test_document_can_be_corrected_without_reopening_tricks(client: TestClient) -> None:
    created = client.post("/v1/customers", json=MARIA).json()
    r = client.patch(f"/v1/customers/{created['id']}",
                     json={"document": {"country": "CL", "type": "RUT", "number": "11.111.111-1"}})
    assert r.status_code == 200
    assert r.json()["document"]["number"] == "111111111"


def test_changes_by_month_and_explicit_range(client: TestClient) -> None:
    created = client.post("/v1/customers", json=MARIA).json()
    month = client.get(f"/v1/customers/{created['id']}/changes", params={"period": "month"}).json()
    assert {c["field"] for c in month["items"]} >= {"document", "first_name", "phones", "consents.offers"}
    old = client.get(f"/v1/customers/{created['id']}/changes", params={"from": "2020-01-01", "to": "2020-01-31"}).json()
    assert old["items"] == []
    bad = client.get(f"/v1/customers/{created['id']}/changes", params={"from": "2020-02-01", "to": "2020-01-01"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_range"


def test_a_date_as_to_includes_that_whole_day(client: TestClient) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    created = client.post("/v1/customers", json=MARIA).json()
    url = f"/v1/customers/{created['id']}/changes"
    today = datetime.now(ZoneInfo("America/Santiago")).date().isoformat()
    one_day = client.get(url, params={"from": today, "to": today})
    assert one_day.status_code == 200, one_day.text
    assert {c["field"] for c in one_day.json()["items"]} >= {"document", "first_name"}
    assert one_day.json()["to"] > one_day.json()["from"]
    basic = client.get(url, params={"from": today.replace("-", ""), "to": today.replace("-", "")})
    assert basic.json()["items"] == one_day.json()["items"]  # 20261122 is the same day as 2026-11-22
    instant = client.get(url, params={"from": f"{today}T00:00:00", "to": f"{today}T00:00:00.001"})
    assert instant.status_code == 200 and instant.json()["items"] == []


@pytest.mark.parametrize("params, field", [
    ({"period": "month", "date": "9999-12-31"}, "date"),
    ({"period": "week", "date": "9999-12-31"}, "date"),
    ({"from": "9999-12-31", "to": "9999-12-31"}, "to"),
    ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
    ({"from": "yesterday", "to": "2026-03-01"}, "from"),
    ({"period": "week", "from": "2026-03-01", "to": "2026-03-02"}, "period"),
    ({"from": "2026-01-01", "to": "9999-12-31T23:59:59-05:00"}, "to"),
    ({"from": "0001-01-01T00:00+05:00", "to": "2026-01-01"}, "from"),
])
def test_impossible_history_ranges_are_422_not_500(client: TestClient, params: dict[str, str], field: str) -> None:
    created = client.post("/v1/customers", json=MARIA).json()
    r = client.get(f"/v1/customers/{created['id']}/changes", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field if "errors" in r.json() else r.json().get("field") == field


def test_search_by_name_without_accents_and_by_loyalty_id(client: TestClient) -> None:
    created = client.post("/v1/customers", json=body(loyalty_id="ly-0001")).json()
    assert created["loyalty_id"] == "LY-0001"
    client.post("/v1/customers", json=body(document={"country": "CL", "type": "DNI", "number": "X123456"},
                                           first_name="Pedro", first_surname="Rojas", foreigner=True))
    for q in ("pena", "María Soto", "PEÑ", "LY-0001", "ly-0001", "12.345.678-5", "012345678-5"):
        items = client.get("/v1/customers/search", params={"q": q}).json()["items"]
        assert [i["id"] for i in items] == [created["id"]], q
    assert client.get("/v1/customers/search", params={"q": "zzz"}).json()["items"] == []


def test_idempotency_key_replays_and_refuses_a_different_body(client: TestClient, services: Station) -> None:
    first = client.post("/v1/customers", json=MARIA, headers={"Idempotency-Key": "abc-1"})
    again = client.post("/v1/customers", json=MARIA, headers={"Idempotency-Key": "abc-1"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert counts(services)[0] == 1
    other = client.post("/v1/customers", json=body(first_name="Ana"), headers={"Idempotency-Key": "abc-1"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    # The same JSON re-serialized (other key order, pretty-printed) is the same request.
    import json

    reordered = json.dumps(dict(reversed(list(MARIA.items()))), indent=2).encode()
    retry = client.post("/v1/customers", content=reordered,
                        headers={"Idempotency-Key": "abc-1", "Content-Type": "application/json"})
    assert retry.status_code == 201 and retry.headers["idempotent-replayed"] == "true"
    assert counts(services)[0] == 1


def test_requests_without_a_valid_token_are_401(client: TestClient) -> None:
    r = client.get("/v1/customers/search", params={"q": "x"}, headers={"Authorization": ""})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client.get("/v1/customers/search", params={"q": "x"}, headers={"Authorization": "Bearer lat_wrong"})
    assert r.status_code == 401
    assert client.get("/v1/health", headers={"Authorization": ""}).status_code == 200


def test_revoked_token_is_refused(client: TestClient, services: Station) -> None:
    services.tokens.revoke("pos-1")
    assert client.get("/v1/customers/search", params={"q": "x"}).status_code == 401


@pytest.mark.parametrize("raw,status,code", [
    (b'{"document": ', 400, "malformed_json"),
    (b'{"document": "\xff\xfe"}', 400, "malformed_json"),
    (b'[1, 2, 3]', 422, "validation_failed"),
    (b'x' * 300_000, 413, "body_too_large"),
])
def test_malformed_bodies_are_4xx_and_store_nothing(client: TestClient, services: Station, raw: bytes, status: int,
                                                   code: str) -> None:
    r = client.post("/v1/customers", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert counts(services) == (0, 0, 0)


@pytest.mark.parametrize("changes,field", [
    ({"birth_date": "1990-02-30"}, "birth_date"),
    ({"birth_date": "2999-01-01"}, "birth_date"),
    ({"nickname": "Mari"}, "nickname"),
    ({"email": "not-an-email"}, "email"),
    ({"sex": "Q"}, "sex"),
    ({"credit_limit": "12.345"}, "credit_limit"),
    ({"phones": [{"number": "3100000000, 3111111111", "kind": "mobile"}]}, "phones[0].number"),
    ({"first_name": "Ana\x00"}, "first_name"),
    ({"birth_date": "1990-08-22T00:00:00"}, "birth_date"),
    ({"birth_date": 19900822}, "birth_date"),
    ({"foreigner": "yes"}, "foreigner"),
    ({"foreigner": 1}, "foreigner"),
    ({"consents": {"offers": "no"}}, "consents.offers"),
    ({"consents": {"partner_programs": [{"name": "LATAM Pass", "value": "1"}]}}, "consents.partner_programs[0].value"),
])
def test_bad_fields_are_422_with_the_field_named(client: TestClient, services: Station, changes: dict[str, Any],
                                                 field: str) -> None:
    r = client.post("/v1/customers", json=body(**changes))
    assert r.status_code == 422, r.text
    assert field in {e["field"] for e in r.json()["errors"]}
    assert counts(services) == (0, 0, 0)


def test_sql_looking_strings_are_stored_literally(client: TestClient, services: Station) -> None:
    sneaky = "Robert'); DROP TABLE customers;--"
    r = client.post("/v1/customers", json=body(address=sneaky))
    assert r.status_code == 201
    assert client.get(f"/v1/customers/{r.json()['id']}").json()["address"] == sneaky
    assert client.get("/v1/customers/search", params={"q": "'); DROP TABLE customers;--"}).status_code == 200
    assert counts(services)[0] == 1


def test_openapi_documents_every_route_and_the_problem_model(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path, method in [("/v1/health", "get"), ("/v1/customers", "post"), ("/v1/customers", "get"),
                         ("/v1/customers/search", "get"), ("/v1/customers/{customer_id}", "get"),
                         ("/v1/customers/{customer_id}", "patch"), ("/v1/customers/{customer_id}/changes", "get")]:
        assert method in paths[path], (path, method)
    assert "Problem" in spec["components"]["schemas"]
    assert "409" in paths["/v1/customers"]["post"]["responses"]


def test_cors_only_for_configured_origins(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agent.api.app import create_app
    from agent.station import build_station
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, api={"cors_origins": ["http://pos.local"]})
    services = build_station(settings)
    try:
        with TestClient(create_app(settings, services), base_url="http://127.0.0.1") as c:
            preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
            ok = c.options("/v1/customers", headers={"Origin": "http://pos.local", **preflight})
            assert ok.headers.get("access-control-allow-origin") == "http://pos.local"
            other = c.options("/v1/customers", headers={"Origin": "http://evil.example", **preflight})
            assert "access-control-allow-origin" not in other.headers
    finally:
        services.close()


def test_no_cors_headers_by_default(client: TestClient) -> None:
    r = client.get("/v1/health", headers={"Origin": "http://pos.local"})
    assert "access-control-allow-origin" not in r.headers


def test_search_with_control_characters_is_a_clear_422(client: TestClient) -> None:
    r = client.get("/v1/customers/search", params={"q": "ana\x00"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_query"


def test_chunked_oversized_body_is_413_not_400(client: TestClient, services: Station) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 10_000  # 400 kB, no Content-Length

    r = client.post("/v1/customers", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"
    assert counts(services) == (0, 0, 0)


def test_created_answer_equals_the_stored_read_and_the_model(client: TestClient) -> None:
    from agent.customers.models import Customer

    created = client.post("/v1/customers", json=MARIA).json()
    read = client.get(f"/v1/customers/{created['id']}").json()
    assert read.pop("accounts") == []  # the loyalty view added to a read (no account yet)
    assert read == created
    assert Customer.model_validate(created).model_dump(mode="json") == created
