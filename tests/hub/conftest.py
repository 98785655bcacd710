"""Hub test fixtures: a real PostgreSQL (tests.hub.postgres), a real Mosquitto
(tests.fakes.mosquitto), hub workers as real ``loyalty-hub run`` processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hub.db.migrate import migrate
from tests.fakes.mosquitto import Mosquitto, mosquitto_binary
from tests.hub.postgres import Postgres, postgres_available
from tests.signing import write_private_pem

ROOT = Path(__file__).resolve().parents[2]
needs_services = pytest.mark.skipif(not postgres_available() or mosquitto_binary() is None,
                                    reason="postgresql and mosquitto are needed (.ci/run installs them)")


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[Postgres]:
    server = Postgres().start()
    yield server
    server.destroy()


@pytest.fixture
def database(postgres_server: Postgres) -> Iterator[str]:
    """A fresh, migrated database per test on the module's server."""
    name = f"t{os.urandom(6).hex()}"
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = postgres_server.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
    yield url


@pytest.fixture
def db(database: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database, autocommit=True) as conn:
        yield conn


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.stop()


class HubProcess:
    """One ``loyalty-hub run`` worker process (its own MQTT client and database connections)."""

    def __init__(self, tmp: Path, name: str, mqtt_url: str, database_url: str, **env: str) -> None:
        self.name, self.log = name, tmp / f"hub-{name}.log"
        self.args = [sys.executable, "-m", "hub.cli", "run", "--name", name, "--mqtt-url", mqtt_url,
                     "--database-url", database_url]
        self.env = {**os.environ, "LOYALTY_HUB_INGEST__GAP_GRACE_S": "2", "LOYALTY_HUB_INGEST__REPLAY_TIMEOUT_S": "10",
                    "LOYALTY_HUB_DOWNLINK__INTERVAL_S": "0.3", "LOYALTY_HUB_DOWNLINK__CONFIRM_INTERVAL_S": "1",
                    # The test head-office key: stations refuse unsigned directory deltas.
                    "LOYALTY_HUB_CENTRAL__SIGNING_KEY_FILE": str(write_private_pem(tmp / "ho-signing.pem")), **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "HubProcess":
        self.proc = subprocess.Popen(self.args, env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                     stderr=self.log.open("a"))
        return self

    def wait_subscribed(self, timeout: float = 60.0, connections: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.log.exists() and self.log.read_text().count("[subscribed]") >= connections:
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"hub worker {self.name} exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"hub worker {self.name} did not subscribe: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[list[HubProcess]]:
    started: list[HubProcess] = []
    yield started
    for hub in started:
        t = time.monotonic()
        hub.stop()
        print(f"hub {hub.name} stopped in {time.monotonic() - t:.1f} s")


def batch(station: str, events: list[dict[str, Any]]) -> bytes:
    return json.dumps({"station_id": station, "events": events}).encode()
