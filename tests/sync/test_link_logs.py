"""A head-office outage is two log lines (lost; back, with how long it lasted), however many
reconnection attempts happen in between; a clean stop logs no warning at all."""
from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.fakes.mosquitto import Mosquitto
from tests.sync.conftest import make_services


def test_outage_is_logged_once_each_way_and_a_clean_stop_is_quiet(
        tmp_path: Path, broker: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="agent.queue.publisher")
    services = make_services(tmp_path, broker.port, reconnect_min_s=0.1, reconnect_max_s=0.2)
    publisher = services.sync.publisher
    try:
        services.start()
        assert wait_until(lambda: publisher.link.is_up, 10)
        broker.kill()
        assert wait_until(lambda: publisher.link.snapshot().state == "down", 10)
        time.sleep(2.0)  # ~10 refused reconnection attempts
        attempts = sum("retrying in" in m for m in caplog.messages)
        broker.start()
        assert wait_until(lambda: publisher.link.is_up, 15)
        lost = [r for r in caplog.records if "[head_office_lost]" in r.getMessage()]
        back = [r.getMessage() for r in caplog.records if "[head_office_back]" in r.getMessage()]
        assert attempts >= 5
        assert len(lost) == 1 and lost[0].levelno == logging.WARNING
        lasted = re.search(r"restablecida tras (\d+) s sin servicio \[head_office_back\]", back[0]) if back else None
        assert len(back) == 1 and lasted and int(lasted.group(1)) >= 2, back  # slept 2 s while it was down
        caplog.clear()
    finally:
        services.close()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
