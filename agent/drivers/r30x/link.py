"""Byte transport for the R30x codec over a serial port (pyserial or anything shaped like it).

The link owns framing on the wire: it writes encoded packets, feeds whatever arrives into a
``PacketDecoder`` and hands back verified packets from the expected address. It knows nothing
about what the commands mean (see ``client.py``).
"""
from __future__ import annotations

import termios
import time
from typing import Protocol

import serial

from agent.drivers.r30x.errors import AddressMismatch, ChecksumError, PortLost, ReplyTimeout, UnexpectedPacket
from agent.drivers.r30x.protocol import (
    DEFAULT_ADDRESS,
    PID_ACK,
    PID_COMMAND,
    PID_DATA,
    PID_END_DATA,
    Packet,
    PacketDecoder,
    encode_packet,
    split_data,
)

# Longest a single read blocks before the deadline is re-checked. Data arriving earlier wakes
# the read at once (pyserial selects on the fd), so this only bounds cancellation latency.
_POLL_SECONDS = 0.05
# Upper bound on a bulk upload, so a sensor stuck sending data packets cannot hold us forever.
MAX_TRANSFER_BYTES = 64 * 1024


class SerialPort(Protocol):
    timeout: float | None

    def write(self, data: bytes) -> int | None: ...
    def read(self, size: int = 1) -> bytes: ...
    @property
    def in_waiting(self) -> int: ...
    def reset_input_buffer(self) -> None: ...
    def close(self) -> None: ...


def open_serial(path: str, baud: int) -> serial.Serial:
    """Open the sensor's port 8N1 (raises serial.SerialException if it is absent).

    A device unplugged while it is being opened can fail inside pyserial's termios calls with
    ``termios.error``, which is not an OSError: it is turned into the SerialException callers
    already handle, instead of escaping as an unexpected crash.
    """
    try:
        return serial.Serial(path, baudrate=baud, bytesize=8, parity="N", stopbits=1, timeout=_POLL_SECONDS)
    except termios.error as exc:
        raise serial.SerialException(f"could not configure {path}: {exc}") from exc


class Link:
    def __init__(self, port: SerialPort, address: int = DEFAULT_ADDRESS, reply_timeout: float = 1.0) -> None:
        self.port = port
        self.address = address
        self.reply_timeout = reply_timeout
        self._decoder = PacketDecoder()
        self._queued: list[Packet] = []
        port.timeout = _POLL_SECONDS

    def close(self) -> None:
        try:
            self.port.close()
        except (OSError, serial.SerialException):
            pass  # closing a vanished device must not mask the error that got us here

    # -- writing -------------------------------------------------------------------------------
    def send_command(self, payload: bytes) -> None:
        # Anything still unread belongs to an earlier, abandoned exchange: drop it so a late
        # reply can never be taken as the answer to this command.
        self._discard_input()
        self._write(encode_packet(PID_COMMAND, payload, self.address))

    def send_data(self, data: bytes, packet_size: int) -> None:
        self._write(b"".join(split_data(data, packet_size, self.address)))

    # -- reading -------------------------------------------------------------------------------
    def read_reply(self, what: str, timeout: float | None = None) -> Packet:
        packet = self.read_packet(what, timeout)
        if packet.pid != PID_ACK:
            raise UnexpectedPacket(f"packet id 0x{packet.pid:02X} where a reply was expected ({what})")
        return packet

    def read_data(self, what: str, timeout: float | None = None) -> bytes:
        """Collect data packets (0x02 ...) up to and including the end packet (0x08)."""
        parts: list[bytes] = []
        total = 0
        while True:
            packet = self.read_packet(what, timeout)
            if packet.pid not in (PID_DATA, PID_END_DATA):
                raise UnexpectedPacket(f"packet id 0x{packet.pid:02X} inside a data transfer ({what})")
            parts.append(packet.payload)
            total += len(packet.payload)
            if total > MAX_TRANSFER_BYTES:
                raise UnexpectedPacket(f"data transfer longer than {MAX_TRANSFER_BYTES} bytes ({what})")
            if packet.pid == PID_END_DATA:
                return b"".join(parts)

    def read_packet(self, what: str, timeout: float | None = None) -> Packet:
        limit = self.reply_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        rejected_before = self._decoder.rejected
        while not self._queued:
            if time.monotonic() >= deadline:
                if self._decoder.rejected > rejected_before:
                    raise ChecksumError(self._decoder.rejected - rejected_before)
                raise ReplyTimeout(what, limit)
            self._queued.extend(self._decoder.feed(self._read_some()))
        packet = self._queued.pop(0)
        if packet.address != self.address:
            raise AddressMismatch(self.address, packet.address)
        return packet

    # -- port access, where a vanished device turns into PortLost ------------------------------
    def _read_some(self) -> bytes:
        try:
            first = self.port.read(1)
            waiting = self.port.in_waiting if first else 0
            return first + (self.port.read(waiting) if waiting else b"")
        except (OSError, serial.SerialException) as exc:
            raise PortLost(str(exc)) from exc

    def _write(self, data: bytes) -> None:
        try:
            self.port.write(data)
        except (OSError, serial.SerialException) as exc:
            raise PortLost(str(exc)) from exc

    def _discard_input(self) -> None:
        self._queued.clear()
        self._decoder.reset()
        try:
            self.port.reset_input_buffer()
        except (OSError, serial.SerialException) as exc:
            raise PortLost(str(exc)) from exc
