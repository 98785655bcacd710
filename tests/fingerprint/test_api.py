"""HTTP routes over the real app, real SQLite, real pty fake sensor (simulated customer)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.biometric.config import FingerprintSettings
from agent.biometric.wiring import build_biometric_service
from agent.config import Settings
from agent.station import Station

MARIA: dict[str, Any] = {
    "document": {"country": "CL", "type": "RUT", "number": "12.345.678-5"},
    "first_name": "María", "first_surname": "Peña",
}


@pytest.fixture
def api(settings: Settings, services: Station, token: str) -> Iterator[TestClient]:
    # The shared fixtures run without simulated devices; this one adds the simulated sensor.
    fp = FingerprintSettings(enabled=True, simulated=True, reply_timeout_s=1.0, finger_wait_s=5)
    services.fingerprint = build_biometric_service(fp, services.db, services.customers,
                                                             settings.storage.key_dir)
    app = create_app(settings, services)
    with TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def run(client: TestClient, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    started = client.post(path, json=body or {})
    assert started.status_code == 202, started.text
    op = started.json()
    seen = list(op["events"])
    while op["state"] == "running":
        op = client.get(f"/v1/biometrics/operations/{op['id']}", params={"after": len(seen), "wait": 2}).json()
        seen += op["events"]
    op["all_events"] = [e["code"] for e in seen]
    return op


def customer(client: TestClient, biometrics: bool) -> str:
    body = {**MARIA, "consents": {"biometrics": biometrics}}
    response = client.post("/v1/customers", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_enroll_verify_delete(api: TestClient) -> None:
    cid = customer(api, biometrics=True)
    op = run(api, f"/v1/biometrics/customers/{cid}/enroll", {"finger": "right_index"})
    assert op["state"] == "succeeded", op
    assert op["all_events"][:4] == ["place_finger", "captured", "lift_finger", "place_again"]
    assert api.get(f"/v1/biometrics/customers/{cid}").json()["fingers"] == ["right_index"]

    op = run(api, f"/v1/biometrics/customers/{cid}/verify")
    assert op["state"] == "succeeded" and op["result"]["matched"] is True and op["result"]["score"] >= 200

    assert api.delete(f"/v1/biometrics/customers/{cid}").json() == {"deleted": 1}
    gone = api.post(f"/v1/biometrics/customers/{cid}/verify", json={})
    assert gone.status_code == 404 and gone.json()["code"] == "fingerprint_not_enrolled"


def test_enroll_without_consent_is_409(api: TestClient) -> None:
    cid = customer(api, biometrics=False)
    response = api.post(f"/v1/biometrics/customers/{cid}/enroll", json={}, headers={"Accept-Language": "en"})
    assert response.status_code == 409
    assert response.json()["code"] == "biometric_consent_required"
    assert "non-biometric" in response.json()["detail"]


def test_unknown_customer_and_bad_finger(api: TestClient) -> None:
    assert api.post("/v1/biometrics/customers/nope/enroll", json={}).status_code == 404
    cid = customer(api, biometrics=True)
    assert api.post(f"/v1/biometrics/customers/{cid}/enroll", json={"finger": "tail"}).status_code == 422


def test_cancel_a_running_operation(api: TestClient, services: Station) -> None:
    cid = customer(api, biometrics=True)
    service = services.fingerprint
    service._prompt_hook = None  # nobody at the sensor
    started = api.post(f"/v1/biometrics/customers/{cid}/enroll", json={}).json()
    assert api.post(f"/v1/biometrics/customers/{cid}/enroll", json={}).json()["code"] == "fingerprint_sensor_busy"
    cancelled = api.post(f"/v1/biometrics/operations/{started['id']}/cancel").json()
    assert cancelled["state"] == "cancelled" and cancelled["error"]["code"] == "fingerprint_cancelled"


def test_status_health_and_auth(api: TestClient) -> None:
    deadline = time.monotonic() + 5
    while not api.get("/v1/biometrics/status").json()["connected"] and time.monotonic() < deadline:
        time.sleep(0.1)  # the monitor connects in the background
    status = api.get("/v1/biometrics/status").json()
    assert status["connected"] and status["model"] == "R307"
    assert api.get("/v1/health").json()["components"]["fingerprint"]["state"] == "ok"
    assert api.get("/v1/biometrics/status", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_disabled_sensor_is_503(settings: Settings, services: Station, token: str) -> None:
    app = create_app(settings, services)
    with TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as client:
        response = client.get("/v1/biometrics/status")
    assert response.status_code == 503 and response.json()["code"] == "fingerprint_disabled"
