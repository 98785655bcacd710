"""``GET /openapi.json`` describes what the server really sends.

Checked on the served document (the real app over a real SQLite file) and against real
answers: every error is ``application/problem+json`` with the ``Problem`` schema (FastAPI's
own ``HTTPValidationError`` is gone), every route behind the token documents 401, the headers
the API reads and sends are declared, every extension member the code puts on a problem is in
``Problem``, and what each route answers to real requests is a status it documents.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from agent.api.app import create_app
from agent.config import Settings
from agent.station import Station, build_station
from tests.conftest import MARIA, make_settings

ROOT = Path(__file__).resolve().parent.parent
PROBLEM_JSON = "application/problem+json"
PROBLEM_CONTENT = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
# docs/api.md names these as the routes that honour Idempotency-Key.
IDEMPOTENT = {("post", "/v1/customers"), ("post", "/v1/sales"), ("post", "/v1/sales/returns"),
              ("post", "/v1/sales/voids"), ("post", "/v1/rewards/redemptions")}
# The routes that record who made a change (``Depends(actor)``).
ATTRIBUTED = {("post", "/v1/customers"), ("patch", "/v1/customers/{customer_id}"),
              ("post", "/v1/idcard/captures/{capture_id}/customer")}


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def header_params(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    r = client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def test_no_fastapi_validation_error_anywhere(spec: dict[str, Any]) -> None:
    text = json.dumps(spec)
    assert "HTTPValidationError" not in text
    assert "ValidationError" not in spec["components"]["schemas"]
    assert '"Validation Error"' not in text  # FastAPI's own 422 description


def test_every_error_response_is_problem_json(spec: dict[str, Any]) -> None:
    checked = 0
    for path, method, operation in operations(spec):
        for status, response in operation["responses"].items():
            if not status.startswith(("2", "3")):
                assert response.get("content") == PROBLEM_CONTENT, (method, path, status, response.get("content"))
                checked += 1
        # FastAPI validates parameters and bodies; the custom handler answers a Problem 422.
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in operation["responses"], (method, path)
        if "requestBody" in operation:  # malformed JSON and the body-size limit apply to every body
            assert {"400", "413"} <= set(operation["responses"]), (method, path)
            if "application/json" in operation["requestBody"]["content"]:  # a JSON body sent as text
                assert "415" in operation["responses"], (method, path)
    assert checked > 100
    schemas = spec["components"]["schemas"]
    assert schemas["Problem"]["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldProblem"}
    assert "FieldProblem" in schemas


def test_every_route_behind_the_token_answers_and_documents_401(spec: dict[str, Any], settings: Settings,
                                                                services: Station) -> None:
    anonymous = TestClient(create_app(settings, services), base_url="http://127.0.0.1")
    authenticated = 0
    for path, method, operation in operations(spec):
        url = re.sub(r"\{[^}]+\}", "x", path)
        r = anonymous.request(method.upper(), url)
        if path == "/v1/health":
            assert r.status_code == 200 and "security" not in operation and "401" not in operation["responses"]
            continue
        assert r.status_code == 401, (method, path, r.status_code)  # the route really is behind the token
        assert r.headers["content-type"] == PROBLEM_JSON and r.headers["www-authenticate"] == "Bearer"
        assert operation.get("security") == [{"HTTPBearer": []}], (method, path)
        assert "401" in operation["responses"], (method, path)
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], (method, path)
        authenticated += 1
    assert authenticated >= 30


def test_headers_read_and_sent_are_documented(spec: dict[str, Any]) -> None:
    create = spec["paths"]["/v1/customers"]["post"]
    assert {"Idempotency-Key", "X-Attendant-Id"} <= header_params(create)
    assert {"Location", "Idempotent-Replayed"} <= set(create["responses"]["201"]["headers"])
    for path, method, operation in operations(spec):
        replayable = (method, path) in IDEMPOTENT
        assert ("Idempotency-Key" in header_params(operation)) == replayable, (method, path)
        headers = operation["responses"].get("201", {}).get("headers", {})
        assert ("Idempotent-Replayed" in headers) == replayable, (method, path)
        assert ("X-Attendant-Id" in header_params(operation)) == ((method, path) in ATTRIBUTED), (method, path)


def test_documented_headers_are_the_ones_sent(client: TestClient) -> None:
    first = client.post("/v1/customers", json=MARIA, headers={"Idempotency-Key": "k-1", "X-Attendant-Id": "P-017"})
    again = client.post("/v1/customers", json=MARIA, headers={"Idempotency-Key": "k-1", "X-Attendant-Id": "P-017"})
    assert first.status_code == again.status_code == 201
    assert first.headers["location"] == again.headers["location"] == f"/v1/customers/{first.json()['id']}"
    assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
    # X-Attendant-Id, as documented: recorded with the change; blank is absent; a bad one is a 400.
    url = f"/v1/customers/{first.json()['id']}"
    assert client.patch(url, json={"email": None}, headers={"X-Attendant-Id": "P-017"}).status_code == 200
    assert client.patch(url, json={"address": "Calle 1"}, headers={"X-Attendant-Id": "  "}).status_code == 200
    changes = client.get(f"{url}/changes", params={"period": "week"}).json()["items"]
    assert {c["actor"] for c in changes[:-2]} == {"pos:pos-1/attendant:P-017"}  # the enrollment
    assert [(c["field"], c["actor"]) for c in changes[-2:]] == [("email", "pos:pos-1/attendant:P-017"),
                                                                ("address", "pos:pos-1")]
    bad = client.patch(url, json={}, headers={"X-Attendant-Id": "P 017"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_attendant_id"


def _emitted_extension_members() -> set[str]:
    """Keys of every literal ``extra={...}`` an AgentError is raised with."""
    keys: set[str] = set()
    for source in (ROOT / "agent").rglob("*.py"):
        for block in re.findall(r"(?<!\w)extra=\{([^}]*)\}", source.read_text(encoding="utf-8")):  # not json_schema_extra
            keys |= set(re.findall(r'"(\w+)"\s*:', block))
    return keys


def test_problem_documents_every_extension_member(spec: dict[str, Any], client: TestClient) -> None:
    properties = spec["components"]["schemas"]["Problem"]["properties"]
    assert "customer_id" in properties
    emitted = _emitted_extension_members()
    assert {"customer_id", "retry_after_s", "reason", "allowed"} <= emitted  # the search still finds them
    assert emitted <= set(properties), f"undocumented problem members: {emitted - set(properties)}"
    # A real 409 carries customer_id, and every member it has is documented.
    first = client.post("/v1/customers", json=MARIA)
    taken = client.post("/v1/customers", json=MARIA)
    assert taken.status_code == 409 and taken.json()["customer_id"] == first.json()["id"]
    assert set(taken.json()) <= set(properties)


# ---- real answers are documented ---------------------------------------------------------------

def _validator(spec: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator({"$ref": "#/components/schemas/Problem", "components": spec["components"]})


def _assert_documented(spec: dict[str, Any], path: str, method: str, r: Any) -> None:
    operation = spec["paths"][path][method]
    assert str(r.status_code) in operation["responses"], (method, path, r.status_code, r.text[:200])
    if r.status_code >= 400:
        assert r.headers["content-type"] == PROBLEM_JSON, (method, path)
        body = r.json()
        errors = list(_validator(spec).iter_errors(body))
        assert not errors, (method, path, [e.message for e in errors])
        assert set(body) <= set(spec["components"]["schemas"]["Problem"]["properties"]), (method, path)


@pytest.mark.parametrize("simulated", [False, True], ids=["no-devices", "simulated-devices"])
def test_what_every_route_answers_is_documented(tmp_path: Path, simulated: bool) -> None:
    """Each route called with placeholder ids, an empty body and a broken body: whatever it
    answers (404, 422, 503 for a disabled device, 400 ...) must be a status it documents."""
    settings = make_settings(tmp_path / "data", devices={"simulated": simulated})
    services = build_station(settings)
    try:
        client = TestClient(create_app(settings, services), base_url="http://127.0.0.1",
                            headers={"Authorization": f"Bearer {services.tokens.create('pos-1')}"})
        spec = client.get("/openapi.json").json()
        statuses: set[int] = set()
        for path, method, operation in operations(spec):
            url = re.sub(r"\{[^}]+\}", "x", path)
            params = {"timeout": 0} if path == "/v1/events" else {}  # do not long-poll
            r = client.request(method.upper(), url, params=params,
                               **({"json": {}} if "requestBody" in operation else {}))
            _assert_documented(spec, path, method, r)
            statuses.add(r.status_code)
            if "requestBody" in operation:
                broken = client.request(method.upper(), url, content=b'{"a": ',
                                        headers={"Content-Type": "application/json"})
                assert broken.status_code == 400, (method, path)
                _assert_documented(spec, path, method, broken)
        # PIN entry: an unknown swipe, then a real lock-out (423 with retry_after_s).
        pin = client.post("/v1/swipes/x/pin", json={"attendant_id": "P-017", "pin": "0000"})
        _assert_documented(spec, "/v1/swipes/{session_id}/pin", "post", pin)
        statuses.add(pin.status_code)
        assert {404, 422} <= statuses
        if simulated:
            assert 201 in statuses  # the simulated camera read a document
        else:
            assert 503 in statuses  # fingerprint and ID-card capture are off
    finally:
        services.close()


def test_pin_answers_are_documented(tmp_path: Path) -> None:
    """403, 423 (with ``retry_after_s``), 200, then 409 for an authorized swipe: all documented."""
    from agent.cards.config import PinSettings
    from agent.cards.events import EventHub
    from agent.cards.pins import AttendantPins
    from agent.cards.sessions import SwipeSessions
    from tests.cards.test_pins import HO_KEY, PEPPER, Clock, bundle

    settings = make_settings(tmp_path / "data")
    services = build_station(settings)
    try:
        pins = AttendantPins(services.db, station_id="st-1", settings=PinSettings(max_failures=2),
                             pepper=PEPPER, public_key=HO_KEY.public_key(), now=Clock())
        pins.import_bundle(bundle())
        sessions = SwipeSessions(pins, EventHub())
        services.swipe_sessions = sessions
        client = TestClient(create_app(settings, services), base_url="http://127.0.0.1",
                            headers={"Authorization": f"Bearer {services.tokens.create('pos-1')}"})
        spec = client.get("/openapi.json").json()
        route = "/v1/swipes/{session_id}/pin"
        swipe = sessions.on_stripe(";6012345678=?")
        answers = [client.post(f"/v1/swipes/{swipe.id}/pin", json={"attendant_id": "X", "pin": "1"}) for _ in range(2)]
        assert [a.status_code for a in answers] == [403, 423]
        assert answers[1].json()["retry_after_s"] > 0
        other = sessions.on_stripe(";6012345679=?")
        ok = client.post(f"/v1/swipes/{other.id}/pin", json={"attendant_id": "P-01", "pin": "1234"})
        twice = client.post(f"/v1/swipes/{other.id}/pin", json={"attendant_id": "P-01", "pin": "1234"})
        assert (ok.status_code, twice.status_code) == (200, 409)
        for answer in (*answers, ok, twice):
            _assert_documented(spec, route, "post", answer)
    finally:
        services.close()
