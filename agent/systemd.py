"""systemd notification protocol (sd_notify) without libsystemd.

``READY=1`` once the API listens, ``WATCHDOG=1`` from the event loop at half the interval
systemd asks for (so a wedged loop or store stops the pings and systemd restarts us), and
``STATUS=...`` lines a technician sees in ``systemctl status``.
"""
from __future__ import annotations

import os
import socket


def notify(message: str, env: dict[str, str] | None = None) -> bool:
    """Send one notification; False when not running under systemd (no NOTIFY_SOCKET)."""
    environ = os.environ if env is None else env
    address = environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


def watchdog_interval_s(env: dict[str, str] | None = None) -> float | None:
    """Half of WATCHDOG_USEC in seconds, or None when the watchdog is off or meant for another process."""
    environ = os.environ if env is None else env
    usec = environ.get("WATCHDOG_USEC")
    pid = environ.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 2_000_000
