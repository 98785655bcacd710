"""Publisher hardening (issue 12) against a real Mosquitto: the broker's Maximum Packet Size,
acks kept until they are durable, resending at once when the broker kept no session, and
coalesced outbox_full alerts. The pure rules are in tests/test_sync_scheduler.py too."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from agent.store import outbox
from agent.store.outbox import append_event, configure_budget
from tests.conftest import wait_until as wait
from tests.fakes.head_office import FakeHeadOffice
from tests.fakes.mosquitto import Mosquitto
from tests.sync.conftest import STATION, make_services
from tests.sync.test_drain import states


def test_batches_fit_the_broker_maximum_packet_size_and_a_huge_event_is_set_aside(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker", extra_config="max_packet_size 8192").start()
    head_office = FakeHeadOffice(broker.port)
    services = make_services(tmp_path, broker.port, batch_max_bytes=128 * 1024)
    try:
        def write(conn):  # type: ignore[no-untyped-def]
            for i in range(10):
                append_event(conn, "test.event", {"i": i, "pad": "x" * 700})
            append_event(conn, "test.huge", {"pad": "y" * 20_000})  # larger than the broker accepts
            for i in range(10, 20):
                append_event(conn, "test.event", {"i": i, "pad": "x" * 700})

        services.db.write(write)
        services.start()
        assert wait(lambda: states(services).get("confirmed") == 20, 40), states(services)
        assert head_office.unique() == 20 and head_office.messages >= 3  # several packets, none too big
        alerts = [p for t, p in head_office.other if t.endswith("/alerts")]
        assert wait(lambda: any(p.get("type") == "event_too_large"
                                for t, p in head_office.other if t.endswith("/alerts")), 10), alerts
        alert = next(p for t, p in head_office.other if t.endswith("/alerts") and p.get("type") == "event_too_large")
        assert alert["seq"] == 11 and alert["bytes"] > 8192 and alert["max_packet_bytes"] is not None
        assert "oversize" not in broker.log_path.read_text()
        assert services.sync.status()["broker"]["reconnects"] <= 1  # the first connection only: never dropped for it
        # The set-aside is recorded: a restart neither retries nor alerts it again, and the age
        # budget does not count it (an old set-aside event would otherwise stop the station).
        services.close()
        services = make_services(tmp_path, broker.port, batch_max_bytes=128 * 1024)
        services.db.write(lambda c: c.execute("UPDATE outbox_totals SET max_age_s = 1"))
        services.db.write(lambda c: c.execute("UPDATE outbox SET created_at = '2000-01-01T00:00:00Z'"))
        before = len(head_office.other)
        services.start()
        services.db.write(lambda c: append_event(c, "test.event", {"i": 20}))  # not refused for age
        assert wait(lambda: states(services).get("confirmed") == 21, 40), states(services)
        time.sleep(1.0)
        again = [p for t, p in head_office.other[before:] if t.endswith("/alerts") and p.get("type") == "event_too_large"]
        assert again == [] and head_office.unique() == 21
        assert services.db.read(outbox.stats)["set_aside"] == 1
    finally:
        services.close()
        head_office.close()
        broker.kill()


def test_the_broker_keeping_no_session_means_resending_at_once(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker", persistence=False).start()
    head_office = FakeHeadOffice(broker.port, acking=False)
    services = make_services(tmp_path, broker.port, ack_timeout_s=300.0)
    try:
        services.db.write(lambda c: [append_event(c, "test.event", {"i": i}) for i in range(30)])
        services.start()
        assert wait(lambda: states(services).get("delivered") == 30, 20), states(services)
        head_office.close()
        broker.kill()  # no persistence: the station's session is gone with it
        broker.start()
        head_office = FakeHeadOffice(broker.port, client_id="fake-head-office-2")
        started = time.monotonic()
        # Well before the 300 s ack timeout: session_present = 0 made everything due.
        assert wait(lambda: states(services).get("confirmed") == 30, 30), states(services)
        assert time.monotonic() - started < 30
    finally:
        services.close()
        head_office.close()
        broker.kill()


def test_a_head_office_consumer_joining_makes_the_station_resend_what_went_to_nobody(tmp_path: Path) -> None:
    """Events published while no consumer was subscribed (a broker restart, stations back first)
    are PUBACKed and dropped by the broker; the consumer's "online" on loyalty/v1/hub/consumers
    makes the station send them again at once, not after its 300 s ack timeout."""
    broker = Mosquitto(tmp_path / "broker").start()
    services = make_services(tmp_path, broker.port, ack_timeout_s=300.0)
    head_office = None
    try:
        services.db.write(lambda c: [append_event(c, "test.event", {"i": i}) for i in range(5)])
        services.start()
        assert wait(lambda: states(services).get("delivered") == 5, 20), states(services)
        head_office = FakeHeadOffice(broker.port)
        ho = head_office
        assert ho.wait_for(lambda: ho.of_topic("/availability"), 10)  # retained: its subscriptions hold
        time.sleep(1.0)  # nothing comes by itself: the broker had nobody to give them to
        assert head_office.unique() == 0
        head_office.publish("loyalty/v1/hub/consumers", '{"consumer": "fake-head-office", "state": "online"}')
        assert wait(lambda: states(services).get("confirmed") == 5, 20), states(services)
        assert head_office.unique() == 5
    finally:
        services.close()
        if head_office is not None:
            head_office.close()
        broker.kill()


def test_a_burst_of_refusals_is_one_outbox_full_alert(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    head_office = FakeHeadOffice(broker.port)
    services = make_services(tmp_path, broker.port)
    try:
        services.start()
        assert wait(lambda: services.sync.status()["broker"]["state"] == "connected", 20)
        for _ in range(300):
            services.sync.on_outbox_full("bytes")
        time.sleep(2.0)
        alerts = [p for t, p in head_office.other if t.endswith("/alerts") and p.get("type") == "outbox_full"]
        assert len(alerts) == 1 and alerts[0]["reason"] == "bytes" and alerts[0]["refusals"] == 1
        assert services.sync.status()["refused"] == 300  # every refusal is still counted
    finally:
        services.close()
        head_office.close()
        broker.kill()


@pytest.fixture
def tiny_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_acks_that_cannot_be_recorded_are_kept_until_they_are(tmp_path: Path, tiny_disk: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    head_office = FakeHeadOffice(broker.port)
    services = make_services(tiny_disk, broker.port, ack_timeout_s=600.0)
    filler = tiny_disk / "filler"
    try:
        services.db.write(lambda c: configure_budget(c, None, None, None))  # no reserve: hit the real ENOSPC
        services.db.write(lambda c: [append_event(c, "test.event", {"i": i, "pad": "z" * 300}) for i in range(200)])
        services.db.checkpoint()
        with open(filler, "wb") as f:  # the disk is full: recording PUBACKs and acks fails
            f.write(b"\0" * shutil.disk_usage(tiny_disk).free)
        services.start()
        assert wait(lambda: head_office.unique() == 200, 30)
        time.sleep(1.0)
        assert states(services).get("confirmed", 0) < 200  # nothing could be recorded
        filler.unlink()  # space again: the acks kept in memory are recorded, no restart, no resend
        assert wait(lambda: states(services).get("confirmed") == 200, 20), states(services)
        assert head_office.received == 200
    finally:
        services.close()
        head_office.close()
        broker.kill()
