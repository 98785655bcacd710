"""Store and forward against a real broker: offline queueing, outages, restarts, resend."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from agent.station import Station
from tests.conftest import wait_until as wait
from tests.fakes.head_office import FakeHeadOffice
from tests.fakes.mosquitto import Mosquitto, free_port
from tests.sync.conftest import STATION, make_services, queue_events


def states(services: Station) -> dict[str, int]:
    return dict(services.db.read(lambda c: c.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()))




def test_offline_queueing_then_drain_in_order_without_gaps(tmp_path: Path) -> None:
    port = free_port()
    services = make_services(tmp_path, port)
    services.start()
    try:
        queue_events(services, 300)
        time.sleep(0.5)
        status = services.sync.status()
        assert status["pending"] == 300 and status["confirmed"] == 0
        assert status["broker"]["state"] in ("disconnected", "connecting")
        broker = Mosquitto(tmp_path / "broker", port=port).start()
        ho = FakeHeadOffice(port)
        try:
            assert wait(lambda: states(services).get("confirmed") == 300, 30), states(services)
            assert ho.unique() == 300
            assert ho.gaps(STATION) == []
            assert sorted(ho.seqs[STATION]) == list(range(1, 301))
            status = services.sync.status()
            assert status["last_success_at"] is not None and status["broker"]["state"] == "connected"
            event = next(iter(ho.events.values()))
            assert set(event) == {"id", "seq", "type", "schema_version", "created_at", "clock_synced", "payload"}
        finally:
            ho.close()
            broker.kill()
    finally:
        services.close()


def test_broker_killed_and_restarted_mid_drain_loses_nothing(tmp_path: Path, broker: Mosquitto,
                                                             head_office: FakeHeadOffice) -> None:
    services = make_services(tmp_path, broker.port, batch_max_events=20, max_inflight=2)
    queue_events(services, 3000)
    services.start()
    try:
        assert wait(lambda: head_office.unique() > 300, 30)
        broker.kill()  # SIGKILL: the broker loses whatever it had not saved
        time.sleep(1.0)
        broker.start()
        assert wait(lambda: states(services).get("confirmed") == 3000, 60), states(services)
        assert head_office.unique() == 3000 and head_office.gaps(STATION) == []
        assert services.sync.status()["broker"]["reconnects"] >= 1
    finally:
        services.close()


def test_unacknowledged_events_are_resent_and_only_an_ack_confirms(tmp_path: Path, broker: Mosquitto,
                                                                   head_office: FakeHeadOffice) -> None:
    head_office.acking = False  # head office receives but never confirms
    services = make_services(tmp_path, broker.port, ack_timeout_s=0.5)
    queue_events(services, 50)
    services.start()
    try:
        assert wait(lambda: states(services).get("delivered") == 50, 20), states(services)
        assert wait(lambda: head_office.received >= 100, 20)  # sent again after the timeout
        assert states(services).get("confirmed", 0) == 0  # PUBACK alone never confirms
        head_office.acking = True
        assert wait(lambda: states(services).get("confirmed") == 50, 20), states(services)
        assert head_office.unique() == 50
    finally:
        services.close()


def test_agent_sigkilled_mid_drain_resends_after_restart(tmp_path: Path, broker: Mosquitto,
                                                         head_office: FakeHeadOffice) -> None:
    data = tmp_path / "data"
    setup = make_services(tmp_path, broker.port)
    queue_events(setup, 5000)
    setup.close()
    cmd = [sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data), "--port", str(free_port()),
           "--mqtt-url", broker.url, "--station-id", STATION]
    # After a restart, rows PUBACKed before the kill wait one ack timeout for head office's ack
    # (an ack received but not yet recorded when the agent died is gone): short here.
    env = {**os.environ, "LOYALTY_AGENT_MQTT__BATCH_MAX_EVENTS": "25", "LOYALTY_AGENT_MQTT__MAX_INFLIGHT": "2",
           "LOYALTY_AGENT_DEVICES__SIMULATED": "false", "LOYALTY_AGENT_MQTT__ACK_TIMEOUT_S": "5"}
    agent = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait(lambda: head_office.unique() >= 500, 60)
        agent.send_signal(signal.SIGKILL)
        agent.wait(10)
        assert head_office.unique() < 5000  # it really was killed mid-drain
        # The broker publishes the station's Last Will as soon as the connection drops.
        assert wait(lambda: head_office.of_topic("/availability")[-1].get("state") == "offline", 10)
        agent = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait(lambda: head_office.unique() == 5000, 90), head_office.unique()
        check = make_services(tmp_path, broker.port, url=None)
        try:
            assert wait(lambda: states(check).get("confirmed") == 5000, 30), states(check)
        finally:
            check.close()
        assert head_office.gaps(STATION) == []
        assert head_office.received >= 5000  # duplicates allowed (at least once), removed by id
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(20)


def test_availability_last_will_and_status(tmp_path: Path, broker: Mosquitto, head_office: FakeHeadOffice) -> None:
    services = make_services(tmp_path, broker.port)
    services.start()
    try:
        assert wait(lambda: any(p.get("state") == "online" for p in head_office.of_topic("/availability")), 10)
        assert wait(lambda: head_office.of_topic("/status"), 10)
        assert head_office.of_topic("/status")[-1]["station_id"] == STATION
    finally:
        services.close()
    assert wait(lambda: head_office.of_topic("/availability")[-1].get("state") == "offline", 10)
