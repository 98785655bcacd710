"""The fleet benchmark at a reduced size, so CI runs its whole path (light stations speaking
the contract, a real agent, two workers, a SIGKILL and a broker restart): nothing lost, no gap,
nothing unconfirmed. Its speed figures are the benchmark's business, not asserted here."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.hub.conftest import ROOT, needs_services

pytestmark = [needs_services, pytest.mark.slow]


def test_reduced_fleet_loses_nothing() -> None:
    run = subprocess.run([sys.executable, "-m", "bench", "fleet", "--stations", "100", "--agents", "1",
                          "--duration", "15", "--processes", "1", "--ack-timeout", "5", "--burst-stations", "20",
                          "--burst-events", "100"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    out = run.stdout
    assert run.returncode == 0, out + run.stderr[-3000:]
    figures = {name: int(value) for name, value in re.findall(
        r"(events lost|stations with gaps at the end|unconfirmed at the end) \(.*?\)\s+(\d+)", out)}
    assert figures == {"events lost": 0, "stations with gaps at the end": 0, "unconfirmed at the end": 0}, out
    generated = int(re.search(r"events generated at the stations\s+(\d+)", out).group(1))
    assert generated >= 100 * 10  # the load really ran (~15 s at 1 event/s per station, plus the burst)
