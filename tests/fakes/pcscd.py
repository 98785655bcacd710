"""A private, real ``pcscd`` with one vpcd virtual reader, for tests and benchmarks.

Isolation from any system pcscd (and from other test runs on the same machine):
- pcscd 1.9 hard-codes its client socket (``/run/pcscd/pcscd.comm``) and ignores
  ``PCSCLITE_CSOCK_NAME``; only the client library (libpcsclite, used by pyscard) reads that
  variable. pcscd does support systemd socket activation, though, so we create the listening
  UNIX socket ourselves at a private path and hand it over as fd 3 with ``LISTEN_FDS=1`` /
  ``LISTEN_PID``; clients in this process find it through ``PCSCLITE_CSOCK_NAME``.
- the reader config lives in a private directory (``--config DIR``) with a free TCP port as the
  vpcd ``CHANNELID``, so the virtual reader never collides with another vpcd.
- pcscd still writes ``/run/pcscd/pcscd.pid``; a socket-activated pcscd does not refuse to start
  when one exists, and nothing here reads it.
- vpcd always exposes two slots ("... 00 00" on CHANNELID, "... 00 01" on CHANNELID+1), so both
  ports must be free.

Reader unplug: pcscd 1.9.9 re-reads reader.conf on SIGUSR1 but only ever *adds* serial readers
(checked: removing the file and signalling leaves the reader listed), and vpcd has no hotplug.
So "unplug" here stops the daemon (the reader vanishes with it, clients get
SCARD_E_NO_SERVICE / SCARD_E_SERVICE_STOPPED) and "replug" starts it again on the same socket
and port. A USB unplug under a running pcscd (reader missing from SCardListReaders) is handled
by the same driver path (reader not listed -> wait for it) but cannot be produced with vpcd.

Card detection latency: vpcd has no event thread, so pcscd polls it every 400 ms
(PCSCLITE_STATUS_POLL_RATE; the log says "Using the pcscd polling thread"). Expect 0-400 ms
between ``insert()`` and the state change, not an agent delay.

libpcsclite reads ``PCSCLITE_CSOCK_NAME`` once per process (first context), so one process can
talk to one pcscd: use a single instance per test session.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
READER_NAME = "ACS ACR122U PICC Interface"


def missing_requirements() -> str | None:
    """Why a real pcscd + vpcd cannot run here, or None if it can."""
    if shutil.which("pcscd") is None and not Path("/usr/sbin/pcscd").exists():
        return "pcscd is not installed (Debian package pcscd)"
    if not VPCD_DRIVER.exists():
        return f"vpcd driver missing: {VPCD_DRIVER} (Debian package vsmartcard-vpcd)"
    try:
        import smartcard.scard  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the venv has pyscard
        return f"pyscard not importable: {exc}"
    return None


def free_tcp_port_pair() -> int:
    """A port p such that p and p+1 are both free right now (vpcd listens on both)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("0.0.0.0", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        try:
            with socket.socket() as s2:
                s2.bind(("0.0.0.0", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of TCP ports")


class PrivatePcscd:
    """Start/stop a pcscd that serves only this process; simulate reader unplug/replug."""

    def __init__(self, reader_name: str = READER_NAME) -> None:
        self.reader_name = reader_name
        self.port = free_tcp_port_pair()
        self.dir = Path(tempfile.mkdtemp(prefix="pcscd-test-"))
        self.conf_dir = self.dir / "reader.conf.d"
        self.conf_dir.mkdir()
        self.socket_path = self.dir / "pcscd.comm"
        self.log_path = self.dir / "pcscd.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def conf_file(self) -> Path:
        return self.conf_dir / "vpcd"

    def _write_conf(self) -> None:
        self.conf_file.write_text(
            f'FRIENDLYNAME "{self.reader_name}"\n'
            f"DEVICENAME /dev/null:{self.port:#x}\n"
            f"LIBPATH {VPCD_DRIVER}\n"
            f"CHANNELID {self.port:#x}\n"
        )

    def start(self, timeout: float = 10.0) -> None:
        self._write_conf()
        if self.socket_path.exists():
            self.socket_path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o777)
        listener.listen(64)
        pcscd = shutil.which("pcscd") or "/usr/sbin/pcscd"
        # `exec` keeps the shell's pid, so LISTEN_PID=$$ is pcscd's pid, as sd_listen_fds wants.
        # The socket becomes fd 3 in the child (dup2 in preexec_fn; fd 3 is kept by pass_fds).
        script = 'export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@"'
        listener_fd = listener.fileno()
        env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_FDNAMES",)}
        log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            ["/bin/sh", "-c", script, pcscd, "--foreground", "--config", str(self.conf_dir)],
            pass_fds=(3,), preexec_fn=lambda: os.dup2(listener_fd, 3), stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )
        log.close()
        # pcscd owns the listening socket now; keeping our copy would make clients queue up on
        # a socket nobody accepts from once pcscd stops (instead of failing fast).
        listener.close()
        os.environ["PCSCLITE_CSOCK_NAME"] = str(self.socket_path)
        self.wait_for_reader(present=True, timeout=timeout)

    def readers(self) -> list[str]:
        from smartcard import scard

        rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if rc != scard.SCARD_S_SUCCESS:
            return []
        try:
            rc, readers = scard.SCardListReaders(ctx, [])
            return list(readers) if rc == scard.SCARD_S_SUCCESS else []
        finally:
            scard.SCardReleaseContext(ctx)

    def wait_for_reader(self, present: bool, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"pcscd exited ({self._proc.returncode}): {self.log_tail()}")
            found = any(r.startswith(self.reader_name) for r in self.readers())
            if found == present:
                return
            time.sleep(0.05)
        raise TimeoutError(f"reader {'never appeared' if present else 'still listed'}: "
                           f"{self.log_tail()}")

    def wait_for_card(self, present: bool, reader_suffix: str = "00 00", timeout: float = 5.0) -> None:
        """Block until pcscd reports the slot as holding a card (or empty).

        Tests call this after removing a card so the next test's card is not taken for a fast
        swap of the previous one (pcscd only polls vpcd every 400 ms).
        """
        from smartcard import scard

        reader = next(r for r in self.readers() if r.endswith(reader_suffix))
        wanted = scard.SCARD_STATE_PRESENT if present else scard.SCARD_STATE_EMPTY
        rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        try:
            state = scard.SCARD_STATE_UNAWARE
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                rc, states = scard.SCardGetStatusChange(ctx, 500, [(reader, state)])
                if rc == scard.SCARD_S_SUCCESS:
                    state = states[0][1] & ~scard.SCARD_STATE_CHANGED
                if state & wanted:
                    return
            raise TimeoutError(f"card never became {'present' if present else 'absent'}")
        finally:
            scard.SCardReleaseContext(ctx)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def unplug_reader(self) -> None:
        """The reader disappears: stop the daemon that serves it (see module docstring)."""
        self.stop()

    def replug_reader(self) -> None:
        self.start()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
