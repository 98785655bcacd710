"""A fingerprint sensor missing at start is logged once, however often the monitor probes it."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from agent.station import build_station
from tests.conftest import make_settings


def test_missing_sensor_is_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    services = build_station(make_settings(tmp_path / "data", fingerprint={
        "enabled": True, "port": str(tmp_path / "no-such-tty"), "reconnect_every_s": 0.05}))
    try:
        time.sleep(1.0)  # ~20 probes
    finally:
        services.close()
    probes = sum("lector de huellas: sigue sin conexión" in m for m in caplog.messages)
    lost = [m for m in caplog.messages if "[device_lost]" in m]
    assert probes >= 5
    assert lost == ["lector de huellas: no disponible (sensor_disconnected) [device_lost]"]
