"""A real PostgreSQL server for tests and benchmarks: own data folder, own port, own socket.

Never uses the machine's PostgreSQL (5432). PostgreSQL refuses to run as root, and CI runs as
root: then the cluster is created and run as ``nobody`` (``runuser``), in a folder of its own
under /tmp that nobody may write (pytest's tmp_path is private to root). ``stop()`` is a fast
shutdown, ``kill()`` a SIGKILL of the postmaster (crash recovery on the next ``start()``).
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
UNPRIVILEGED = "nobody"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_available() -> bool:
    return (PG_BIN / "initdb").exists()


class Postgres:
    def __init__(self, *, port: int | None = None, fsync: bool = True) -> None:
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="hub-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.fsync = fsync
        self._as_root = os.geteuid() == 0
        if self._as_root:
            user = pwd.getpwnam(UNPRIVILEGED)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.root.chmod(0o700)
        self._run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "hub", "-A", "trust", "-E", "UTF8",
                   "--locale", "C.UTF-8", "--no-sync"])
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                       f"unix_socket_directories = '{self.root}'\n"
                       f"fsync = {'on' if fsync else 'off'}\nmax_connections = 200\n"
                       "shared_buffers = 128MB\n")

    @property
    def url(self) -> str:
        return f"postgresql://hub@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        if self._as_root:
            args = ["runuser", "-u", UNPRIVILEGED, "--", *args]
        return subprocess.run(args, capture_output=True, text=True, check=check, cwd=self.root)

    def start(self, timeout: float = 30.0) -> "Postgres":
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(int(timeout)),
                   "start"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"postgres did not start: {self.log.read_text() if self.log.exists() else ''}")

    def stop(self) -> None:
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], check=False)

    def kill(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        time.sleep(0.05)
                except OSError:
                    break

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
