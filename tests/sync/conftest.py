"""Sync tests run against a real Mosquitto started here on a free port (never the machine's)."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.store.outbox import append_event
from agent.station import Station, build_station
from tests.conftest import make_settings
from tests.fakes.head_office import FakeHeadOffice
from tests.fakes.mosquitto import Mosquitto, free_port, mosquitto_binary
from tests.signing import public_b64

if mosquitto_binary() is None:  # CI installs it; a developer machine may not have it
    pytest.skip("mosquitto is not installed", allow_module_level=True)

STATION = "st-test"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.kill()


@pytest.fixture
def head_office(broker: Mosquitto) -> Iterator[FakeHeadOffice]:
    ho = FakeHeadOffice(broker.port)
    yield ho
    ho.close()


def sync_settings(tmp_path: Path, port: int, **mqtt: Any):  # type: ignore[no-untyped-def]
    options = {"url": f"mqtt://127.0.0.1:{port}", "ack_timeout_s": 2.0, "reconnect_min_s": 0.2,
               "reconnect_max_s": 1.0, "batch_max_events": 100, **mqtt}
    return make_settings(tmp_path / "data", mqtt=options, station={"id": STATION},
                         sync={"config_public_key": public_b64()})


def make_services(tmp_path: Path, port: int, **mqtt: Any) -> Station:
    return build_station(sync_settings(tmp_path, port, **mqtt))


def queue_events(services: Station, n: int, size: int = 200) -> None:
    def write(conn):  # type: ignore[no-untyped-def]
        for i in range(n):
            append_event(conn, "test.event", {"i": i, "pad": "x" * size})

    services.db.write(write)


def unused_port() -> int:
    return free_port()
