"""Hand-held MRZ readers on a serial line (swipe readers, USB CDC-ACM ``/dev/ttyACM0``).

They send each MRZ line as ASCII ended by CR (some CR LF), the document's lines in a burst, and
may drop a line's trailing ``<`` filler. ``MrzAssembler`` (pure) groups lines into one document:
three lines (TD1 ID card, first line starting A, C or I) or two (TD3 passport, starting P), in a burst
with no pause longer than ``gap_s`` between lines; a line that cannot belong to an MRZ, or a
pause, starts over. The serial side reuses :class:`SerialCardReader` (reopen after unplug, noise
dropped). Documents go to ``on_block(bytes)`` with lines joined by ``\\n``; they hold a person's
data and are never logged.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.drivers.serial_card_reader import SerialCardReader

_MRZ_LINE = re.compile(r"^[A-Z0-9<]{1,44}$")  # the names line may be short once its filler is dropped


@dataclass
class MrzAssembler:
    gap_s: float = 0.5
    _lines: list[str] = field(default_factory=list)
    _last_at: float | None = None
    dropped_lines: int = 0

    def feed(self, line: str, at: float) -> bytes | None:
        """One received line (CR/LF stripped); returns a complete MRZ when this line ends one."""
        line = line.strip().upper()
        if self._lines and self._last_at is not None and at - self._last_at > self.gap_s:
            self.dropped_lines += len(self._lines)
            self._lines.clear()
        self._last_at = at
        if not _MRZ_LINE.match(line) or (not self._lines and (line[0] not in "ACIP" or len(line) < 15)):
            self.dropped_lines += len(self._lines) + 1
            self._lines.clear()
            return None
        self._lines.append(line)
        if len(self._lines) == (2 if self._lines[0][0] == "P" else 3):  # passports start with P
            block = "\n".join(self._lines).encode("ascii")
            self._lines.clear()
            return block
        return None


class SerialMrzReader:
    """A serial MRZ reader: ``start()``, ``stop()``, ``connected``; complete MRZs to ``on_block``."""

    def __init__(self, port: str, on_block: Callable[[bytes], None], *, baudrate: int = 9600,
                 gap_s: float = 0.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.assembler = MrzAssembler(gap_s=gap_s)
        self._on_block = on_block
        self._clock = clock
        self._serial = SerialCardReader(port, self._line, baudrate=baudrate, max_line=64)
        self.connected = self._serial.connected
        self.link = self._serial.link

    def _line(self, line: str) -> None:
        block = self.assembler.feed(line, self._clock())
        if block is not None:
            self._on_block(block)

    def start(self) -> None:
        self._serial.start()

    def stop(self) -> None:
        self._serial.stop()
