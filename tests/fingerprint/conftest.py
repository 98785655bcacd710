from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.drivers.r30x.client import R30xClient
from agent.drivers.r30x.link import Link, open_serial
from tests.fakes.r30x_sensor import FakeR30xSensor


@pytest.fixture
def fake() -> Iterator[FakeR30xSensor]:
    sensor = FakeR30xSensor().start()
    yield sensor
    sensor.stop()


def connect(sensor: FakeR30xSensor, address: int | None = None, packet_size: int = 128, timeout: float = 0.5) -> R30xClient:
    port = open_serial(sensor.path, 57600)
    link = Link(port, sensor.address if address is None else address, reply_timeout=timeout)
    return R30xClient(link, packet_size, capture_timeout=timeout)
