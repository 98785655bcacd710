"""Streams, connections and the Host header against the real agent process on a free port.

Raw sockets on purpose: they are what a browser with many tabs, an idle-connection flood or a
DNS-rebinding page look like to the agent.
"""
from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from tests.conftest import free_port, make_settings, wait_until
from agent.station import build_station


class Stream(socket.socket):
    status: int = 0


@dataclass
class Agent:
    port: int
    data_dir: Path
    proc: subprocess.Popen[str]

    def token(self, name: str) -> str:
        return _cli("token", "create", "--name", name, "--data-dir", str(self.data_dir))

    def get(self, path: str, token: str | None = None, timeout: float = 10.0,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers={**({"Authorization": f"Bearer {token}"} if token else {}),
                                               **(headers or {})})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def open_stream(self, token: str, extra: str = "") -> Stream:
        """An SSE request whose response stays open; returns once the headers arrived."""
        sock = Stream(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(("127.0.0.1", self.port))
        sock.sendall((f"GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                      f"Accept: text/event-stream\r\n{extra}\r\n").encode("latin-1"))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, head
            head += chunk
        sock.status = int(head.split(b" ", 2)[1])
        return sock


def _cli(*args: str) -> str:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Agent]:
    data_dir = tmp_path / "data"
    _cli("token", "create", "--name", "setup", "--data-dir", str(data_dir))
    port = free_port()
    # A serial card reader on a pty: swipe events exist only where a reader is configured.
    master, slave = os.openpty()
    env = {**os.environ, "LOYALTY_AGENT_API__MAX_CONNECTIONS": "60", "LOYALTY_AGENT_API__HEADER_TIMEOUT_S": "1.5",
           "LOYALTY_AGENT_API__MAX_STREAMS_PER_CLIENT": "8",
           "LOYALTY_AGENT_CARDS__MAGSTRIPE__SERIAL_PORT": os.ttyname(slave)}
    log_path = tmp_path / "agent.log"
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data_dir),
                                 "--port", str(port)], env=env, stderr=log_file, text=True)
    running = Agent(port, data_dir, proc)
    running.log = log_path
    try:
        assert wait_until(lambda: running.get("/v1/health", timeout=1)[0] == 200, 30, tolerate=(OSError,))
        yield running
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)


def test_streams_hold_no_worker_threads_and_are_capped_per_token(agent: Agent) -> None:
    tokens = [agent.token(f"pos-{i}") for i in range(6)]
    streams = [agent.open_stream(t) for t in tokens for _ in range(8)]  # 48 streams: more than the 40 threads
    try:
        assert {s.status for s in streams} == {200}
        # Routes that run in worker threads still answer.
        assert agent.get("/v1/health", timeout=10)[0] == 200
        assert agent.get("/v1/sync", tokens[0], timeout=10)[0] == 200
        # A ninth stream for one token is refused clearly, and a long poll counts too.
        extra = agent.open_stream(tokens[0])
        assert extra.status == 429
        extra.close()
        status, body = agent.get("/v1/events?timeout=0", tokens[0])
        assert status == 429 and b"too_many_streams" in body
        # Closing streams frees the token's slots.
        for s in streams[:8]:
            s.close()
        assert wait_until(lambda: agent.get("/v1/events?timeout=0", tokens[0])[0] == 200, 10)
    finally:
        for s in streams:
            s.close()


def test_revoking_a_token_ends_its_open_streams(agent: Agent) -> None:
    token = agent.token("tablet")
    stream = agent.open_stream(token)
    assert stream.status == 200
    _cli("token", "revoke", "--name", "tablet", "--data-dir", str(agent.data_dir))
    stream.settimeout(10)
    received = b""
    started = time.monotonic()
    while time.monotonic() - started < 10:
        chunk = stream.recv(4096)
        if not chunk:
            break
        received += chunk
    assert time.monotonic() - started < 10, "the stream was still open 10 s after the revocation"
    assert b"swipe." not in received
    stream.close()


def test_idle_connections_are_closed_and_cannot_starve_the_api(agent: Agent) -> None:
    idle = [socket.create_connection(("127.0.0.1", agent.port), timeout=10) for _ in range(150)]
    try:
        assert agent.get("/v1/health", timeout=10)[0] == 200  # past max_connections=60
        slow = socket.create_connection(("127.0.0.1", agent.port), timeout=10)
        slow.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers never finish
        assert slow.recv(100) == b""  # closed by the header timeout, not left open
        slow.close()
    finally:
        for s in idle:
            s.close()
    logs = Path(agent.log).read_text()
    assert logs.count("límite de conexiones de la API (60) alcanzado") == 1 and logs.count("[api_connections_full]") == 1, logs[-2000:]
    assert "Traceback" not in logs


def test_last_event_id_must_be_a_bounded_sequence_number(agent: Agent) -> None:
    token = agent.token("pos-x")
    for value in ["\xb2", "9" * 5000, "-1", "1e3", "1 2", "99999999999999999", "\xd9\xa3"]:
        stream = agent.open_stream(token, f"Last-Event-ID: {value}\r\n")
        assert stream.status == 400, value
        stream.close()
    assert agent.open_stream(token, "Last-Event-ID: 12\r\n").status == 200


def test_only_loopback_and_configured_host_names_are_answered(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api={"allowed_hosts": ["caja-1.estacion.local"]})
    services = build_station(settings)
    try:
        app = create_app(settings, services)
        for host in ("localhost:8787", "127.0.0.1", "[::1]:8787", "caja-1.estacion.local:8787"):
            r = TestClient(app, base_url=f"http://{host}").get("/v1/health")
            assert r.status_code == 200, host
        for host in ("attacker.example", "attacker.example:8787", "127.0.0.1.attacker.example", "localhost.evil"):
            for path in ("/v1/health", "/openapi.json"):
                r = TestClient(app, base_url=f"http://{host}").get(path)
                assert r.status_code == 421 and r.json()["code"] == "misdirected_request", (host, path)
                assert "host" in r.json()["detail"]
                assert b"station" not in r.content
    finally:
        services.close()
