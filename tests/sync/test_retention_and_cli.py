"""Retention (only confirmed events are ever deleted) and ``loyalty-agent sync`` against a running agent."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from agent.clock import iso, utcnow
from agent.store import outbox
from agent.station import Station
from tests.conftest import free_port
from tests.fakes.head_office import FakeHeadOffice
from tests.fakes.mosquitto import Mosquitto
from tests.sync.conftest import STATION, queue_events


def test_prune_removes_only_confirmed_events_past_retention(services: Station) -> None:
    queue_events(services, 10)
    ids = services.db.read(lambda c: [r[0] for r in c.execute("SELECT id FROM outbox ORDER BY seq")])
    old = "2020-01-01T00:00:00.000Z"
    services.db.write(lambda c: outbox.mark_confirmed(c, ids[:4], old))  # confirmed long ago
    services.db.write(lambda c: outbox.mark_confirmed(c, ids[4:6], iso(utcnow())))  # confirmed just now
    removed = services.db.write(lambda c: outbox.prune_confirmed(c, iso(utcnow())[:10] + "T00:00:00.000Z"))
    assert removed == 4
    left = services.db.read(lambda c: c.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
    assert dict(left) == {"confirmed": 2, "pending": 4}
    totals = services.db.read(lambda c: c.execute("SELECT pending_count FROM outbox_totals").fetchone()[0])
    assert totals == 4  # the budget counts exactly the unconfirmed events
    # The sequence keeps growing after a prune: head office never sees a number reused.
    queue_events(services, 1)
    assert services.db.read(lambda c: c.execute("SELECT max(seq) FROM outbox").fetchone()[0]) == 11


def test_sync_command_shows_progress_until_confirmed(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    head_office = FakeHeadOffice(broker.port)
    head_office.acking = False
    data, port = tmp_path / "data", free_port()
    env = {**os.environ, "LOYALTY_AGENT_DEVICES__SIMULATED": "false", "LOYALTY_AGENT_MQTT__ACK_TIMEOUT_S": "3600",
           "LOYALTY_AGENT_API__PORT": str(port)}
    agent = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data), "--mqtt-url",
                              broker.url, "--station-id", STATION], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        token_file = data / "keys" / "local-cli.token"
        deadline = time.monotonic() + 30
        while not token_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert oct(token_file.stat().st_mode & 0o777) == "0o600"
        subprocess.run([sys.executable, "-m", "agent.cli", "customers", "lookup", "-q", "x", "--data-dir", str(data)],
                       env=env, capture_output=True)  # a second process may read the store while the agent runs
        from agent.config import load_settings
        from agent.station import open_database

        db = open_database(load_settings(None, {"storage": {"data_dir": str(data)}}))
        db.write(lambda c: [outbox.append_event(c, "test.event", {"i": i}) for i in range(25)])
        db.close()
        assert head_office.wait_for(lambda: head_office.received >= 25, 30)
        head_office.acking = True  # head office back, but the agent would wait an hour to resend...
        r = subprocess.run([sys.executable, "-m", "agent.cli", "sync", "--data-dir", str(data), "--timeout", "30"],
                           env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert "sincronizado" in r.stderr and "100%" in r.stderr  # ...sync now does it at once
        assert head_office.unique() == 25
    finally:
        agent.terminate()
        agent.wait(20)
        head_office.close()
        broker.kill()
