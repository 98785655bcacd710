"""Serial card readers that send one plain line per card (magstripe or RFID modules in
"ASCII output" mode, e.g. ``;6012345678901234=2512?\\r\\n`` or ``04A1B2C3\\r\\n``).

Lines are delivered stripped of CR/LF to ``on_line``; blank lines and lines longer than
``max_line`` (noise on a floating RX pin, wrong baud rate) are dropped, never delivered.
"""
from __future__ import annotations

import logging
import termios
import threading
from collections.abc import Callable

import serial

from agent.drivers.transitions import LinkState

log = logging.getLogger(__name__)
_REOPEN_EVERY_S = 2.0


class SerialCardReader:
    def __init__(self, port: str, on_line: Callable[[str], None], *, baudrate: int = 9600,
                 max_line: int = 512) -> None:
        self.port = port
        self.baudrate = baudrate
        self.max_line = max_line
        self._on_line = on_line
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.link = LinkState(log, f"lector de tarjetas serie {port}")
        self._serial: serial.Serial | None = None
        self._thread: threading.Thread | None = None
        self.dropped_lines = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="serial-card", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Open (and after an unplug, reopen) the port; a missing reader never stops the agent."""
        while not self._stop.is_set():
            try:
                self._serial = serial.Serial(self.port, self.baudrate, timeout=0.2)
            except (serial.SerialException, OSError, termios.error) as exc:
                self.link.down(type(exc).__name__)  # logged once per outage, not per retry
                self._stop.wait(_REOPEN_EVERY_S)
                continue
            self.link.up()
            self.connected.set()  # opening flushed whatever arrived before: reads start now
            self._read_lines(self._serial)
            self.connected.clear()
            self._serial.close()
            self._stop.wait(_REOPEN_EVERY_S)

    def _read_lines(self, port: serial.Serial) -> None:
        buffer = bytearray()
        while not self._stop.is_set():
            try:
                chunk = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError, termios.error) as exc:
                if not self._stop.is_set():
                    self.link.down(type(exc).__name__)
                return
            for byte in chunk:
                if byte in (0x0A, 0x0D):
                    self._deliver(bytes(buffer))
                    buffer.clear()
                elif len(buffer) <= self.max_line:
                    buffer.append(byte)

    def _deliver(self, raw: bytes) -> None:
        if not raw:
            return
        if len(raw) > self.max_line:
            self.dropped_lines += 1
            return
        try:
            line = raw.decode("ascii")
        except UnicodeDecodeError:  # wrong baud rate produces high-bit garbage
            self.dropped_lines += 1
            return
        if not line.isprintable():
            self.dropped_lines += 1
            return
        try:
            self._on_line(line)
        except Exception:
            log.exception("falló el manejo de una lectura del lector serie [card_callback_failed]")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None
        if self._serial is not None:
            self._serial.close()
            self._serial = None
