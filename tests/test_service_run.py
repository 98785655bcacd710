"""The agent as systemd runs it: a real process, a real notify socket, real HTTP on a free port."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from agent.systemd import notify, watchdog_interval_s
from tests.conftest import MARIA, free_port


def _recv_all(sock: socket.socket, until: str, timeout: float) -> list[str]:
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            messages.append(sock.recv(4096).decode())
        except socket.timeout:
            break
        if any(until in m for m in messages):
            break
    return messages


def test_run_notifies_ready_watchdog_and_stopping_and_logs_no_personal_data(tmp_path: Path) -> None:
    notify_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify_path))
    port = free_port()
    token = subprocess.run([sys.executable, "-m", "agent.cli", "token", "create", "--name", "pos-1", "--data-dir",
                            str(tmp_path / "data")], capture_output=True, text=True, check=True).stdout.strip()
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "400000"}
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--data-dir", str(tmp_path / "data"),
                             "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        ready = _recv_all(sock, "READY=1", 30)
        assert any(m.startswith("READY=1") and "STATUS=listening on 127.0.0.1:" in m for m in ready), ready
        watchdog = _recv_all(sock, "WATCHDOG=1", 5)
        assert any("WATCHDOG=1" in m for m in watchdog), watchdog

        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/customers", data=json.dumps(MARIA).encode(), method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201

        proc.send_signal(signal.SIGTERM)
        stopping = _recv_all(sock, "STOPPING=1", 15)
        assert any("STOPPING=1" in m for m in stopping), stopping
        assert proc.wait(timeout=15) == 0
        logs = proc.stderr.read() if proc.stderr else ""
        assert "cliente creado" in logs and "[customer_created]" in logs  # the log line exists...
        # The running agent still warns (journal) about what one-shot commands keep quiet about.
        assert "clave de PIN de la estación no instalada" in logs
        after_stop = logs.split("Shutting down", 1)[1]
        assert " WARNING " not in after_stop and " ERROR " not in after_stop, after_stop  # a clean stop is quiet
        for secret in ("12345678", "123456785", "María", "Peña", "maria@example.com", "98765", token):
            assert secret not in logs  # ...but carries no personal data
    finally:
        if proc.poll() is None:
            proc.kill()
        sock.close()


def test_notify_supports_the_abstract_namespace() -> None:
    name = f"loyalty-agent-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        assert notify("STATUS=hello", {"NOTIFY_SOCKET": "@" + name})
        sock.settimeout(2)
        assert sock.recv(100) == b"STATUS=hello"
    finally:
        sock.close()
    assert notify("READY=1", {}) is False


def test_watchdog_interval_is_half_and_respects_pid() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({}) is None


def test_unit_file_is_hardened_notify_service() -> None:
    unit = (Path(__file__).parent.parent / "systemd" / "loyalty-agent.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "StateDirectory=loyalty-agent",
                 "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "DevicePolicy=closed",
                 "SupplementaryGroups=dialout video input plugdev", "CapabilityBoundingSet=\n",
                 # issue 12: other processes invisible, private mounts, IPC removed, memory capped
                 "ProtectProc=invisible\n", "ProcSubset=pid\n", "PrivateMounts=yes\n", "RemoveIPC=yes\n",
                 "MemoryMax="):
        assert line in unit, line
