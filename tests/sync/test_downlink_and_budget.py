"""Downlink configuration, the disk budget and the sync API, against a real broker."""
from __future__ import annotations

import json
import time
from pathlib import Path

from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.loyalty.models import RuleProgram
from tests.conftest import MARIA
from tests.conftest import wait_until as wait
from tests.fakes.head_office import FakeHeadOffice
from tests.fakes.mosquitto import Mosquitto
from tests.signing import signed
from tests.sync.conftest import STATION, make_services, queue_events, sync_settings

CONFIG = f"loyalty/v1/stations/{STATION}/config"




def program(version: str, points: str = "1") -> dict:  # type: ignore[type-arg]
    return {"version": version, "rules": [{"kind": "earn", "rule_id": "fuel", "article_group": "FUEL",
                                           "basis": "per_unit", "points": points}]}


def test_malformed_stale_and_valid_configuration(tmp_path: Path, broker: Mosquitto, head_office: FakeHeadOffice) -> None:
    RuleProgram.model_validate(program("p1"))  # the fixture itself is a valid program
    services = make_services(tmp_path, broker.port)
    services.start()
    loyalty = services.loyalty
    try:
        assert wait(lambda: services.sync.status()["broker"]["state"] == "connected")
        head_office.publish(f"{CONFIG}/earning_rules", b"{not json", retain=True)
        assert wait(lambda: head_office.of_topic("/config/errors"))
        error = head_office.of_topic("/config/errors")[-1]
        assert error["kind"] == "earning_rules" and error["code"] == "invalid"

        head_office.publish(f"{CONFIG}/earning_rules", signed("earning_rules", {"version": 2, "data": program("p2")}),
                            retain=True)
        assert wait(lambda: services.sync.status()["downlink"].get("earning_rules", {}).get("version") == 2)
        assert loyalty.rules().program.version == "p2"

        head_office.publish(f"{CONFIG}/earning_rules", signed("earning_rules", {"version": 1, "data": program("p1")}),
                            retain=True)
        assert wait(lambda: any(e["code"] == "stale" for e in head_office.of_topic("/config/errors")))
        assert loyalty.rules().program.version == "p2"  # nothing changed

        bad_rule = {"version": 3, "data": {"version": "p3", "rules": [{"kind": "earn", "rule_id": "x", "basis": "per_unit",
                                                                       "points": "-5", "article_group": "FUEL"}]}}
        head_office.publish(f"{CONFIG}/earning_rules", signed("earning_rules", bad_rule), retain=True)
        assert wait(lambda: len([e for e in head_office.of_topic("/config/errors") if e["code"] == "invalid"]) >= 2)
        assert loyalty.rules().program.version == "p2"

        head_office.publish(f"{CONFIG}/unknown_kind", b"{}")
        assert wait(lambda: any(e["code"] == "unknown_kind" for e in head_office.of_topic("/config/errors")))
        # The agent still works after all of that.
        queue_events(services, 5)
        assert wait(lambda: head_office.unique() == 5)
    finally:
        services.close()


def test_retained_config_redelivered_on_reconnect_is_not_an_error(tmp_path: Path, broker: Mosquitto,
                                                                  head_office: FakeHeadOffice) -> None:
    head_office.publish(f"{CONFIG}/earning_rules", signed("earning_rules", {"version": 5, "data": program("p5")}),
                        retain=True)
    for _ in range(2):  # second start = a restart: the retained document arrives again
        services = make_services(tmp_path, broker.port)
        services.start()
        try:
            assert wait(lambda: services.sync.status()["downlink"].get("earning_rules", {}).get("version") == 5)
            assert services.loyalty.rules().program.version == "p5"
            time.sleep(0.3)
        finally:
            services.close()
    assert head_office.of_topic("/config/errors") == []


def test_disk_budget_refuses_new_work_with_507_and_alerts(tmp_path: Path, broker: Mosquitto,
                                                          head_office: FakeHeadOffice) -> None:
    head_office.acking = False  # head office is down: nothing gets confirmed
    settings = sync_settings(tmp_path, broker.port, outbox_max_bytes=4000)
    from agent.station import build_station

    services = build_station(settings)
    services.start()
    try:
        queue_events(services, 15, size=200)  # ~15 * 240 bytes: close to the budget
        token = services.tokens.create("pos-1")
        with TestClient(create_app(settings, services), base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as client:
            before = services.db.read(lambda c: c.execute("SELECT count(*) FROM customers").fetchone()[0])
            r = client.post("/v1/customers", json=MARIA)
            assert r.status_code == 507, r.text
            assert r.json()["code"] == "outbox_full"
            assert services.db.read(lambda c: c.execute("SELECT count(*) FROM customers").fetchone()[0]) == before
            assert wait(lambda: head_office.of_topic("/alerts"))
            assert head_office.of_topic("/alerts")[-1]["type"] == "outbox_full"
            status = client.get("/v1/sync").json()
            assert status["refused"] == 1 and status["pending"] + status["delivered"] == 15
    finally:
        services.close()


def test_sync_api_and_sync_now(tmp_path: Path, broker: Mosquitto, head_office: FakeHeadOffice) -> None:
    settings = sync_settings(tmp_path, broker.port, ack_timeout_s=3600)
    from agent.station import build_station

    services = build_station(settings)
    services.start()
    try:
        token = services.tokens.create("pos-1")
        with TestClient(create_app(settings, services), base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as client:
            head_office.acking = False
            queue_events(services, 10)
            assert wait(lambda: client.get("/v1/sync").json()["delivered"] == 10)
            status = client.get("/v1/sync").json()
            assert status["broker"]["state"] == "connected" and status["oldest_pending_age_s"] >= 0
            head_office.acking = True
            assert client.get("/v1/sync").json()["confirmed"] == 0  # ack timeout is an hour...
            r = client.post("/v1/sync")
            assert r.status_code == 202 and r.json()["requested"] is True
            assert wait(lambda: client.get("/v1/sync").json()["confirmed"] == 10)  # ...sync now resends at once
    finally:
        services.close()


def test_offline_station_reports_disabled_sync(tmp_path: Path) -> None:
    from agent.station import build_station
    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    services = build_station(settings)
    try:
        token = services.tokens.create("pos-1")
        with TestClient(create_app(settings, services), base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as client:
            client.post("/v1/customers", json=MARIA)
            status = client.get("/v1/sync").json()
            assert status["broker"]["state"] == "disabled" and status["pending"] == 1
            assert client.post("/v1/sync").json()["requested"] is False
    finally:
        services.close()


def test_replay_request_reopens_confirmed_events(tmp_path: Path, broker: Mosquitto, head_office: FakeHeadOffice) -> None:
    services = make_services(tmp_path, broker.port)
    queue_events(services, 20)
    services.start()
    try:
        assert wait(lambda: services.sync.status()["confirmed"] == 20)
        received = head_office.received
        head_office.publish(f"loyalty/v1/stations/{STATION}/replay",
                            json.dumps({"from_seq": 5, "to_seq": 9, "request_id": "r-1"}))
        assert wait(lambda: head_office.of_topic("/replay/result"))
        result = head_office.of_topic("/replay/result")[-1]
        assert result["request_id"] == "r-1" and result["reopened"] == 5 and result["status"] == "ok"
        assert wait(lambda: head_office.received == received + 5)
        assert wait(lambda: services.sync.status()["confirmed"] == 20)
    finally:
        services.close()
