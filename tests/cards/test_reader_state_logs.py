"""With pcscd gone the reader retries quickly but logs the loss once and the return once
(real pcscd + vpcd; "gone" is the daemon stopped, see tests/fakes/pcscd.py)."""
from __future__ import annotations

import logging
import time

import pytest

from agent.drivers.pcsc_reader import PcscCardReader, PcscReaderConfig
from tests.conftest import wait_until


def test_pcscd_outage_is_logged_once_not_per_retry(live_pcscd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.drivers.pcsc_reader")
    reader = PcscCardReader(lambda read: None, PcscReaderConfig(reader_pattern="00 00$", service_backoff_s=0.05))
    reader.start()
    try:
        assert wait_until(reader.connected.is_set, 10)
        live_pcscd.unplug_reader()
        assert wait_until(lambda: not reader.connected.is_set(), 10)
        time.sleep(1.0)  # ~20 reconnection attempts at 0.05 s
        retries = sum("sigue sin conexión" in m for m in caplog.messages)
        live_pcscd.replug_reader()
        assert wait_until(reader.connected.is_set, 15)
    finally:
        reader.stop()
    lost = [r for r in caplog.records if "[device_lost]" in r.getMessage()]
    back = [r for r in caplog.records if "[device_back]" in r.getMessage()]
    assert retries >= 5, caplog.messages  # it did retry, quietly
    assert len(lost) == 1 and lost[0].levelno == logging.WARNING
    assert "pcscd_unavailable" in lost[0].getMessage()
    assert len(back) == 1 and "restablecida tras" in back[0].getMessage()
    assert not [m for m in caplog.messages if "pcscd unavailable" in m]
