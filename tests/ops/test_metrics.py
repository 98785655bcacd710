"""GET /metrics over the real app: each series moves with the real event behind it (an outbox
row, a 507, a PIN check, a simulated fingerprint enrollment and ID-card read through the real
drivers, a broker killed and restarted)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from agent.api.app import create_app
from agent.station import Station, build_station
from agent.store.outbox import append_event, mark_confirmed
from tests.conftest import MARIA, make_settings, wait_until
from tests.fakes.mosquitto import Mosquitto, mosquitto_binary

LOCAL = ("127.0.0.1", 50123)
LAN = ("192.168.10.20", 50123)


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    built: list[Station] = []

    def factory(client: tuple[str, int] = LOCAL, **sections: Any) -> tuple[Station, TestClient]:
        station = build_station(make_settings(tmp_path / f"data{len(built)}", **sections))
        built.append(station)
        token = station.tokens.create("pos-1")
        return station, TestClient(create_app(station.settings, station), base_url="http://127.0.0.1", client=client,
                                   headers={"Authorization": f"Bearer {token}"})

    yield factory
    for station in built:
        station.close()


def test_loopback_scrapes_without_a_token_others_need_one(make: Any) -> None:
    station, _ = make()
    app = create_app(station.settings, station)
    assert TestClient(app, base_url="http://127.0.0.1", client=LOCAL).get("/metrics").status_code == 200
    refused = TestClient(app, base_url="http://127.0.0.1", client=LAN).get("/metrics")
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    token = station.tokens.create("prometheus")
    assert TestClient(app, base_url="http://127.0.0.1", client=LAN, headers={"Authorization": f"Bearer {token}"}).get("/metrics").status_code == 200


def test_metrics_can_be_switched_off(make: Any) -> None:
    _, client = make(monitoring={"metrics_enabled": False})
    assert client.get("/metrics").status_code == 404


def test_outbox_backlog_by_state_and_refusals(make: Any) -> None:
    station, client = make(mqtt={"outbox_max_bytes": 1500})
    assert client.post("/v1/customers", json=MARIA).status_code == 201
    other = {**MARIA, "document": {"country": "CO", "type": "CC", "number": "1020304050"}}
    assert client.post("/v1/customers", json=other).status_code == 507
    station.db.write(lambda c: append_event(c, "test.event", {"n": 1}, security=True))
    first_id = station.db.read(lambda c: c.execute("SELECT id FROM outbox ORDER BY seq LIMIT 1").fetchone()[0])
    station.db.write(lambda c: mark_confirmed(c, [first_id], "2026-01-01T00:00:00.000Z"))
    samples = scrape(client)
    assert value(samples, "loyalty_outbox_events", state="pending") == 1
    assert value(samples, "loyalty_outbox_events", state="confirmed") == 1
    assert value(samples, "loyalty_outbox_unconfirmed_bytes") > 0
    assert value(samples, "loyalty_outbox_oldest_age_seconds", state="pending") >= 0
    assert value(samples, "loyalty_outbox_refusals_total") == 1
    assert value(samples, "loyalty_health_status", status="ok") == 1 or value(
        samples, "loyalty_health_reason", code="disk_budget_high", severity="degraded") == 1


def test_request_latency_is_labelled_by_route_template(make: Any) -> None:
    _, client = make()
    assert client.get("/v1/customers/0190f0e0-0000-7000-8000-000000000001").status_code == 404
    samples = scrape(client)
    count = value(samples, "loyalty_http_request_duration_seconds_count", method="GET",
                  route="/v1/customers/{customer_id}", status="4xx")
    assert count == 1
    assert not [k for k in samples if "0190f0e0" in str(k)]


def test_pin_failures_and_lockouts(make: Any, tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agent.cards.pin_bundle import build_bundle
    from agent.cards.pins import install_pepper
    from agent.errors import AgentError
    from tests.ops.test_health import PEPPER, _public_key

    key = Ed25519PrivateKey.generate()
    install_pepper(tmp_path / "data0" / "keys", PEPPER)
    station, client = make(station={"id": "st-1"}, cards={"pins": {"bundle_public_key": _public_key(key),
                                                                     "max_failures": 2}})
    now = datetime.now(timezone.utc)
    station.cards.pins.import_bundle(build_bundle(key, version=1, stations=["st-1"], issued_at=now - timedelta(hours=1),
                                                  expires_at=now + timedelta(days=1), pins={"P-01": "1234"}, pepper=PEPPER))
    before = scrape(client)
    station.cards.pins.verify("P-01", "1234")
    for _ in range(2):
        with pytest.raises(AgentError):
            station.cards.pins.verify("P-01", "9999")
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert delta("loyalty_pin_checks_total", outcome="ok") == 1
    assert delta("loyalty_pin_checks_total", outcome="attendant_pin_invalid") == 1
    assert delta("loyalty_pin_checks_total", outcome="attendant_locked_out") == 1
    assert delta("loyalty_pin_lockouts_total") == 1


def test_simulated_devices_fingerprint_and_idcard_outcomes(make: Any) -> None:
    station, client = make(devices={"simulated": True}, station={"country": "CO", "timezone": "America/Bogota"},
                           fingerprint={"finger_wait_s": 5})
    assert wait_until(lambda: value(scrape(client), "loyalty_device_up", device="fingerprint") == 1, 10)
    before = scrape(client)
    assert client.post("/v1/idcard/captures").status_code == 201
    body = {**MARIA, "consents": {"biometrics": True}}
    customer_id = client.post("/v1/customers", json=body).json()["id"]
    op = client.post(f"/v1/biometrics/customers/{customer_id}/enroll", json={"finger": "right_index"}).json()
    assert wait_until(lambda: client.get(f"/v1/biometrics/operations/{op['id']}").json()["state"] != "running", 30)
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    assert delta("loyalty_fingerprint_operations_total", kind="enroll", outcome="succeeded") == 1
    assert delta("loyalty_idcard_reads_total", outcome="read") == 1
    assert delta("loyalty_idcard_read_seconds_count") == 1 and delta("loyalty_idcard_read_seconds_sum") > 0
    assert value(after, "loyalty_device_up", device="camera") == 1


def test_missing_device_is_down(make: Any, tmp_path: Path) -> None:
    _, client = make(fingerprint={"enabled": True, "port": str(tmp_path / "no-such-tty")})
    assert wait_until(lambda: value(scrape(client), "loyalty_device_up", device="fingerprint") == 0, 10)
    samples = scrape(client)
    assert value(samples, "loyalty_health_reason", code="device_missing", severity="degraded") == 1


@pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")
def test_broker_connected_and_reconnects(make: Any, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    try:
        station, client = make(mqtt={"url": broker.url, "reconnect_min_s": 0.1, "reconnect_max_s": 0.2})
        station.start()
        assert wait_until(lambda: value(scrape(client), "loyalty_broker_connected") == 1, 10)
        assert value(scrape(client), "loyalty_broker_reconnects_total") == 0
        broker.kill()
        assert wait_until(lambda: value(scrape(client), "loyalty_broker_connected") == 0, 10)
        broker.start()
        assert wait_until(lambda: value(scrape(client), "loyalty_broker_connected") == 1, 15)
        assert value(scrape(client), "loyalty_broker_reconnects_total") == 1
    finally:
        broker.kill()


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_series_is_documented_and_the_dashboard_uses_only_real_ones(make: Any) -> None:
    import json
    import re

    _, client = make(mqtt={"url": "mqtt://127.0.0.1:1"})  # a broker configured: its series exist too
    client.get("/v1/health")
    families = {f.name for f in text_string_to_metric_families(client.get("/metrics").text)}
    documented = set(re.findall(r"^\| `(loyalty_\w+)` \|", (DOCS / "metrics.md").read_text(encoding="utf-8"), re.M))
    exported = {n + "_total" if n + "_total" in documented else n for n in families}
    assert exported == documented
    dashboard = json.loads((DOCS / "grafana" / "station.json").read_text(encoding="utf-8"))
    used = {m for p in dashboard["panels"] for t in p["targets"] for m in re.findall(r"loyalty_\w+", t["expr"])}
    known = documented | {f"{h}_bucket" for h in documented if "seconds" in h}
    assert used and used <= known, used - known
