"""Enrollment requests from the website reach the stations' directory, end to end: the public
``/adhesion`` page of a real ``loyalty-hub web`` process, a real ``loyalty-hub run`` worker (the
leader) over a real PostgreSQL and Mosquitto, and a real ``loyalty-agent run`` process.

The request arrives in a signed directory delta and the attendant finds it by document; once
the customer is enrolled at the station, head office (from the ``customer.created`` it ingests)
marks the request fulfilled and the station deletes it; an expired request is deleted at both
ends; a station whose agent does not announce the feature (an older agent, which refuses fields
it does not know) never gets the field; no personal data reach the logs.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest

from tests.conftest import MARIA, free_port, wait_until
from tests.fakes.mosquitto import Mosquitto
from tests.hub.conftest import ROOT, HubProcess, needs_services
from tests.hub.test_central_config import STATION, Agent, HubCli, wait

pytestmark = [needs_services, pytest.mark.slow]
OLD = "st-old-agent"
FORM = {"first_name": "Jorge", "surname": "Soto", "document_country": "CL", "document_type": "RUT",
        "document_number": "9.876.543-3", "phone": "+56 9 5555 1234", "email": "jorge.soto@example.com",
        "station_id": STATION, "consent": "si"}
PERSONAL = ("Jorge", "Soto", "9.876.543", "98765433", "5555 1234", "jorge.soto", "Peña", "12.345.678", "123456785",
            "Expira", "Pronto")


@pytest.fixture
def web(database: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hub.cli", "web", "--database-url", database, "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(tmp_path / "web.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: httpx.get(f"{url}/adhesion").status_code == 200, 90, tolerate=(httpx.HTTPError,))
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


class OldStation:
    """A station whose agent predates the feature: announces no ``features`` and records every
    directory delta it is sent."""

    def __init__(self, broker: Mosquitto) -> None:
        self.deltas: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="old-agent", protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(f"loyalty/v1/stations/{OLD}/config/directory", qos=1)
        self.client.loop_start()
        self.client.publish(f"loyalty/v1/stations/{OLD}/availability",
                            json.dumps({"state": "online", "station_id": OLD, "version": "1.0.0",
                                        "at": "2026-12-01T10:00:00.000Z"}), qos=1, retain=True).wait_for_publish(10)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self.lock:
            self.deltas.append(json.loads(message.payload)["payload"])

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def requests_at(agent: Agent, query: str = "") -> list[dict[str, Any]]:
    status, body = agent.call("GET", f"/v1/enrollment/requests{query}")
    assert status == 200, body
    return body["requests"]


def stored_at_station(agent: Agent) -> list[str]:
    """What the station's database holds, expired or not (the API hides expired ones)."""
    with sqlite3.connect(f"file:{agent.data / 'agent.db'}?mode=ro", uri=True) as conn:
        return [r[0] for r in conn.execute("SELECT request_id FROM loyalty_enrollment_requests ORDER BY 1")]


def test_a_web_request_reaches_the_station_and_leaves_once_fulfilled_or_expired(
        tmp_path: Path, database: str, broker: Mosquitto, hubs: list[HubProcess], web: str) -> None:
    cli = HubCli(tmp_path, database, broker.url)
    public = cli("keys", "generate", "--out", str(cli.key), mqtt=False).stdout.strip()
    assert cli("station", "add", STATION, "--name", "Estación Centro", "--point-value", "1",
               "--install-dir", str(tmp_path / "station" / "data" / "keys"), mqtt=False).returncode == 0
    hubs.append(HubProcess(tmp_path, "w1", broker.url, database,
                           LOYALTY_HUB_CENTRAL__SIGNING_KEY_FILE=str(cli.key)).start())
    hubs[0].wait_subscribed()
    old = OldStation(broker)
    agent = Agent(tmp_path, broker, public)
    try:
        # Bad input changes nothing: a RUT with a wrong check digit is refused in Spanish.
        bad = httpx.post(f"{web}/adhesion", data={**FORM, "document_number": "9.876.543-0"})
        assert bad.status_code == 422 and "RUT" in bad.text
        assert httpx.post(f"{web}/adhesion", data=FORM).status_code == 200
        with psycopg.connect(database) as conn:
            request_id = conn.execute("SELECT request_id FROM enrollment_requests").fetchone()[0]
        assert wait(lambda: requests_at(agent), 60), (tmp_path / "agent.log").read_text()[-3000:]
        [got] = requests_at(agent)
        assert got["request_id"] == f"web-{request_id}"
        assert got["document"] == {"country": "CL", "type": "RUT", "number": "98765433"}  # the agent's compact form
        assert (got["first_name"], got["surname"], got["phone"], got["email"], got["preferred_station"]) == \
            ("Jorge", "Soto", "+56 9 5555 1234", "jorge.soto@example.com", STATION)
        assert got["expires_at"][:10] > got["requested_at"][:10]
        # The attendant looks the customer's document up, typed as on the card.
        assert [r["request_id"] for r in requests_at(agent, "?country=CL&type=RUT&number=9.876.543-3")] == \
            [got["request_id"]]
        assert requests_at(agent, "?country=CL&type=RUT&number=12.345.678-5") == []
        status, problem = agent.call("GET", "/v1/enrollment/requests?country=CL")
        assert status == 422 and problem["code"] == "document_incomplete"

        # Enrolled at the counter: the station's own list drops it at once; head office hears
        # customer.created, marks the request done and tells the station to delete it.
        customer = {**MARIA, "document": {"country": "CL", "type": "RUT", "number": "9.876.543-3"},
                    "first_name": "Jorge", "first_surname": "Soto", "email": "jorge.soto@example.com"}
        status, body = agent.call("POST", "/v1/customers", customer)
        assert status == 201, body
        assert requests_at(agent) == []
        assert wait(lambda: stored_at_station(agent) == [], 60), "the removal never reached the station"
        with psycopg.connect(database) as conn:
            row = conn.execute("SELECT status, announced, customer_id FROM enrollment_requests").fetchone()
            assert row == ("done", "removed", body["id"])
            assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'enrollment_request.fulfilled'"
                                " AND detail->>'request_id' = %s", (str(request_id),)).fetchone()[0] == 1

        # A request 90 days old but for a few seconds: it reaches the station, then both ends delete it.
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("INSERT INTO enrollment_requests(first_name, surname, document_country, document_type,"
                         " document_number, document_compact, station_id, consent, created_at) VALUES ('Expira',"
                         " 'Pronto', 'CL', 'RUT', '11.111.111-1', '111111111', %s, true,"
                         " now() - interval '90 days' + interval '12 seconds')", (STATION,))
        assert wait(lambda: len(stored_at_station(agent)) == 1, 10)
        time.sleep(12)  # the request's own age: nothing here can make it expire sooner
        with psycopg.connect(database) as conn:
            assert wait(lambda: conn.execute("SELECT count(*) FROM enrollment_requests WHERE first_name = 'Expira'"
                                             ).fetchone()[0] == 0, 10)
        assert requests_at(agent) == []
        # The station deletes expired ones when the next delta arrives (any delta: here a new request).
        assert httpx.post(f"{web}/adhesion", data={**FORM, "document_number": "7.654.321-6", "phone": "",
                                                    "email": ""}).status_code == 200
        assert wait(lambda: len(stored_at_station(agent)) == 1 and len(requests_at(agent)) == 1, 30)
        assert requests_at(agent)[0]["document"]["number"] == "76543216"
    finally:
        agent.stop()
        old.close()
    # The station without the feature got none of it (its agent would refuse the whole delta).
    assert all("enrollment_requests" not in d and "removed_enrollment_requests" not in d for d in old.deltas)
    with psycopg.connect(database) as conn:
        features = dict(conn.execute("SELECT station_id, features FROM stations").fetchall())
    assert features == {STATION: ["enrollment_requests"], OLD: []}
    for log in (tmp_path / "agent.log", hubs[0].log, tmp_path / "web.log"):
        text = log.read_text()
        leaked = [p for p in PERSONAL if p in text]
        assert not leaked, f"{log.name} shows personal data: {leaked}"
