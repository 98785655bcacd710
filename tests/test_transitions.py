"""Device and link state changes are logged once each, never once per retry."""
from __future__ import annotations

import logging

import pytest

from agent.drivers.transitions import LinkState


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_lost_and_back_are_logged_once_with_the_outage_length(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="test.link")
    clock = Clock()
    link = LinkState(logging.getLogger("test.link"), "lector de prueba", clock=clock)
    assert link.up() and not link.up()
    for _ in range(500):  # a retry loop during a long outage
        link.down("pcscd_unavailable")
        clock.t += 10
    assert link.snapshot().state == "down" and link.snapshot().reason == "pcscd_unavailable"
    assert link.snapshot().for_s == 5000
    link.up()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert [w.getMessage() for w in warnings] == [
        "lector de prueba: se perdió la conexión (pcscd_unavailable) [device_lost]"]
    assert infos == ["lector de prueba: conectado [connected]",
                     "lector de prueba: conexión restablecida tras 1 h 23 min sin servicio [device_back]"]
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 499


def test_a_device_missing_from_the_start_says_not_available(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="test.link")
    link = LinkState(logging.getLogger("test.link"), "cámara", ("device_lost", "device_back"))
    link.down("device_missing")
    link.down("device_missing")
    assert caplog.messages == ["cámara: no disponible (device_missing) [device_lost]"]
    assert link.down("other", quiet=True) is False
