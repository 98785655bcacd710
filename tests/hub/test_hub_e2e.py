"""The hub end to end: real PostgreSQL, real Mosquitto, real ``loyalty-hub run`` workers and
real ``loyalty-agent run`` stations (nothing mocked).

Two agents and two workers: a customer enrolled and a card issued at station A earn at station
B on the same account, and both stations show the chain-wide balance. Then the failures: a
worker SIGKILLed mid-ingest, PostgreSQL restarted, the broker restarted; in each case every
event of the station ends confirmed at the station and stored once, in order, at the hub.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import MARIA, wait_until
from tests.fakes.mosquitto import Mosquitto
from tests.hub.conftest import HubProcess, needs_services
from tests.hub.postgres import Postgres
from tests.hub.stations import Station

pytestmark = [needs_services, pytest.mark.slow]
PAN = "6012345678901234"


def query(url: str, sql: str, *args: Any) -> Any:
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
        return conn.execute(sql, args).fetchall()


def start_hubs(tmp_path: Path, broker: Mosquitto, database: str, hubs: list[HubProcess]) -> None:
    started = [HubProcess(tmp_path, n, broker.url, database).start() for n in ("w1", "w2")]
    hubs.extend(started)
    for hub in started:
        hub.wait_subscribed()


def fully_synced(station: Station, url: str) -> Callable[[], bool]:
    """Every event of the station confirmed there, and stored once, gap-free, at the hub."""
    def check() -> bool:
        sync = station.sync()
        if sync["pending"] or sync["delivered"]:
            return False
        confirmed = sync["confirmed"]
        rows = query(url, "SELECT contiguous_seq, max_seq_seen FROM stations WHERE station_id = %s", station.id)
        count = query(url, "SELECT count(*) FROM events WHERE station_id = %s", station.id)[0][0]
        return bool(rows) and rows[0][0] == rows[0][1] == confirmed == count
    return check


@pytest.fixture
def stations(tmp_path: Path) -> Iterator[list[Station]]:
    made: list[Station] = []
    yield made
    for station in made:
        t = time.monotonic()
        station.stop()
        print(f"station stopped in {time.monotonic() - t:.1f} s")
        assert "María" not in station.log.read_text() and PAN not in station.log.read_text()


def _enroll(station: Station, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        body = {"document": {"country": "CL", "type": "RUT", "number": _rut(10_000_000 + i)}, "kind": "natural",
                "first_name": "Cliente", "first_surname": f"Sintético{i}"}
        status, answer = station.call("POST", "/v1/customers", body)
        assert status == 201, answer


def _rut(body: int) -> str:
    total, factor = 0, 2
    for digit in reversed(str(body)):
        total += int(digit) * factor
        factor = 2 if factor == 7 else factor + 1
    check = 11 - total % 11
    return f"{body}-{'0' if check == 11 else 'K' if check == 10 else check}"


def test_card_issued_at_a_earns_at_b_and_both_show_the_chain_balance(tmp_path: Path, broker: Mosquitto, database: str,
                                                                    hubs: list[HubProcess], stations: list[Station]) -> None:
    start_hubs(tmp_path, broker, database, hubs)
    a = Station(tmp_path / "a", "st-a", broker.port)
    b = Station(tmp_path / "b", "st-b", broker.port)
    stations.extend([a, b])
    for s in (a, b):
        s.configure_downlink()
        s.start()
    assert a.wait_downlink() and b.wait_downlink()

    status, customer = a.call("POST", "/v1/customers", MARIA)
    assert status == 201, customer
    status, card = a.call("POST", "/v1/loyalty/cards", {"card_number": PAN, "customer_id": customer["id"]})
    assert status in (200, 201), card
    account = card["account_id"]
    issued = time.monotonic()
    # Station B learns the card from the hub's directory delta.
    assert wait_until(lambda: b.call("GET", f"/v1/accounts/{account}")[0] == 200, 20)
    card_to_b_s = time.monotonic() - issued
    print(f"card issued at A usable at B after {card_to_b_s:.2f} s")
    assert card_to_b_s < 10

    earned_b = b.sale(PAN, 40)
    assert earned_b["account_id"] == account and earned_b["points"] == 40
    earned_a = a.sale(PAN, 10)
    assert earned_a["points"] == 10

    assert wait_until(fully_synced(a, database), 30) and wait_until(fully_synced(b, database), 30)
    assert query(database, "SELECT balance FROM accounts WHERE account_id = %s", account) == [(50,)]
    assert query(database, "SELECT customer_id FROM accounts WHERE account_id = %s", account) == [(customer["id"],)]
    assert query(database, "SELECT station_id, points FROM point_movements ORDER BY station_id") == [("st-a", 10), ("st-b", 40)]
    assert query(database, "SELECT data->>'first_name' FROM customers") == [("María",)]
    # Both stations: the hub's snapshot plus their own movements not yet in it = 50, never 90.
    for s in (a, b):
        assert wait_until(lambda s=s: s.call("GET", f"/v1/accounts/{account}")[1]["balance"]["points"] == 50 and
                          s.call("GET", f"/v1/accounts/{account}")[1]["balance"]["pending_local_points"] == 0, 20), \
            s.call("GET", f"/v1/accounts/{account}")[1]
    groups = query(database, "SELECT station_id, article_group, points FROM points_by_station_group ORDER BY 1")
    assert groups == [("st-a", "FUEL", 10), ("st-b", "FUEL", 40)]
    online = query(database, "SELECT station_id, availability FROM stations ORDER BY 1")
    assert online == [("st-a", "online"), ("st-b", "online")]


def _two_workers_one_station(tmp_path: Path, broker: Mosquitto, database: str, hubs: list[HubProcess],
                             stations: list[Station], ack_timeout_s: float = 3.0) -> Station:
    start_hubs(tmp_path, broker, database, hubs)
    station = Station(tmp_path / "a", "st-a", broker.port, ack_timeout_s=ack_timeout_s)
    stations.append(station)
    station.start()
    return station


def test_a_worker_sigkilled_mid_ingest_loses_nothing(tmp_path: Path, broker: Mosquitto, database: str,
                                                     hubs: list[HubProcess], stations: list[Station]) -> None:
    # The agent's default ack timeout (60 s): what the killed worker took with it comes back
    # because its Last Will on loyalty/v1/hub/consumers makes the station resend at once.
    station = _two_workers_one_station(tmp_path, broker, database, hubs, stations, ack_timeout_s=60.0)
    _enroll(station, 60)
    hubs[0].kill()  # mid-ingest: events are flowing
    killed = time.monotonic()
    _enroll(station, 60, start=60)
    assert wait_until(fully_synced(station, database), 40)
    print(f"all confirmed {time.monotonic() - killed:.1f} s after the SIGKILL")
    assert query(database, "SELECT count(*) FROM customers") == [(120,)]
    assert query(database, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(120, 120)]


def test_the_only_worker_killed_and_started_again_loses_nothing_and_waits_no_ack_timeout(
        tmp_path: Path, broker: Mosquitto, database: str, hubs: list[HubProcess], stations: list[Station]) -> None:
    # One worker: what it took with it, and what the station resent on its Last Will while no
    # worker was subscribed, both go nowhere; its "online" when it is back must bring them, not
    # the station's 60 s ack timeout (doubled, 120 s, with a one-copy rule measured in review).
    worker = HubProcess(tmp_path, "solo", broker.url, database).start()
    hubs.append(worker)
    worker.wait_subscribed()
    station = Station(tmp_path / "a", "st-a", broker.port, ack_timeout_s=60.0)
    stations.append(station)
    station.start()
    _enroll(station, 40)
    worker.kill()
    killed = time.monotonic()
    _enroll(station, 20, start=40)
    worker.start()
    worker.wait_subscribed()
    assert wait_until(fully_synced(station, database), 30)
    print(f"all confirmed {time.monotonic() - killed:.1f} s after the SIGKILL")
    assert query(database, "SELECT count(*), count(DISTINCT event_id) FROM events") == [(60, 60)]


def test_postgres_restarted_mid_ingest_loses_nothing(tmp_path: Path, broker: Mosquitto, postgres_server: Postgres,
                                                     database: str, hubs: list[HubProcess],
                                                     stations: list[Station]) -> None:
    station = _two_workers_one_station(tmp_path, broker, database, hubs, stations)
    _enroll(station, 30)
    postgres_server.stop()
    _enroll(station, 30, start=30)  # the station keeps working; the hub cannot commit, so it does not ack
    assert station.sync()["confirmed"] < 60
    postgres_server.start()
    assert wait_until(fully_synced(station, database), 60)
    assert query(database, "SELECT count(*) FROM customers") == [(60,)]


def test_broker_restarted_mid_ingest_loses_nothing(tmp_path: Path, broker: Mosquitto, database: str,
                                                   hubs: list[HubProcess], stations: list[Station]) -> None:
    station = _two_workers_one_station(tmp_path, broker, database, hubs, stations)
    _enroll(station, 30)
    broker.kill()
    _enroll(station, 30, start=30)
    broker.start()
    assert wait_until(fully_synced(station, database), 60)
    assert query(database, "SELECT count(*) FROM customers") == [(60,)]
    assert query(database, "SELECT count(*) FROM events") == [(60,)]


@pytest.fixture
def deaf_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker whose ACL delivers nothing on loyalty/v1/hub/consumers to anyone."""
    (tmp_path / "acl").write_text("topic readwrite loyalty/v1/stations/#\ntopic write loyalty/v1/hub/consumers\n")
    server = Mosquitto(tmp_path / "deaf-broker", extra_config=f"acl_file {tmp_path / 'acl'}").start()
    yield server
    server.kill()


def test_a_gap_forces_a_replay(tmp_path: Path, deaf_broker: Mosquitto, database: str, hubs: list[HubProcess],
                               stations: list[Station]) -> None:
    # The station publishes its first events while no hub is subscribed: the broker drops them
    # (no session holds them). A station that hears the workers' "online" on
    # loyalty/v1/hub/consumers resends them at once; this one cannot (the ACL lets it subscribe
    # but delivers nothing: an older agent, or a broker set up without that line), so it waits its
    # long ack timeout, and the hub must find the hole and ask for a replay.
    broker = deaf_broker
    station = Station(tmp_path / "a", "st-a", broker.port, ack_timeout_s=600)
    stations.append(station)
    station.start()
    _enroll(station, 5)
    assert wait_until(lambda: station.sync()["delivered"] == 5, 20)
    start_hubs(tmp_path, broker, database, hubs)
    _enroll(station, 5, start=5)
    # Events 6-10 arrive, 1-5 are a gap; after the grace period (2 s here) the hub asks for them.
    synced = wait_until(fully_synced(station, database), 40)
    assert synced, (station.sync(), query(database, "SELECT * FROM stations"), query(database, "SELECT * FROM replay_requests"))
    replays = query(database, "SELECT from_seq, to_seq, status, result->>'status' FROM replay_requests")
    assert replays and replays[0][:2] == (1, 5) and replays[0][3] == "ok", replays
    assert query(database, "SELECT count(*) FROM customers") == [(10,)]
