"""Pure packet codec for the R30x fingerprint family (R305/R307/R503/ZFM-20/AS608).

No I/O here: the transport (``link.py``) feeds bytes in and writes bytes out.

Packet layout, big-endian throughout::

    EF 01 | address(4) | pid(1) | length(2) = len(payload) + 2 | payload | checksum(2)

The checksum is the low 16 bits of the sum of the pid, both length bytes and every
payload byte (the header and address are NOT summed).

>>> encode_packet(PID_COMMAND, bytes([0x01])).hex().upper()  # GenImg
'EF01FFFFFFFF010003010005'
>>> encode_packet(PID_COMMAND, bytes([0x13, 0, 0, 0, 0])).hex().upper()  # VfyPwd(0)
'EF01FFFFFFFF0100071300000000001B'
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Iterator

HEADER = b"\xef\x01"
DEFAULT_ADDRESS = 0xFFFFFFFF
HEADER_LEN = 9  # EF 01 + address(4) + pid(1) + length(2)
CHECKSUM_LEN = 2

PID_COMMAND = 0x01
PID_DATA = 0x02
PID_ACK = 0x07
PID_END_DATA = 0x08
KNOWN_PIDS = frozenset({PID_COMMAND, PID_DATA, PID_ACK, PID_END_DATA})

# Largest payload any packet can carry: a 256-byte data packet. Anything longer in a
# header is corruption, and rejecting it early is what lets the decoder resync fast
# instead of waiting for 64 KiB that will never come.
MAX_PAYLOAD = 256
PACKET_SIZES = (32, 64, 128, 256)  # index = the sensor's packet-size code (SysPara 6)

TEMPLATE_SIZE = 512


def checksum(pid: int, payload: bytes) -> int:
    """Low 16 bits of pid + length bytes + payload.

    >>> hex(checksum(0x01, bytes([0x01])))
    '0x5'
    >>> hex(checksum(0x07, bytes([0x00])))
    '0xa'
    >>> checksum(0x02, bytes([0xFF]) * 300)  # masked to 16 bits
    11013
    """
    length = len(payload) + CHECKSUM_LEN
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def encode_packet(pid: int, payload: bytes, address: int = DEFAULT_ADDRESS) -> bytes:
    """Frame one packet.

    >>> encode_packet(PID_COMMAND, bytes([0x03])).hex().upper()
    'EF01FFFFFFFF010003030007'
    >>> encode_packet(PID_ACK, bytes([0x00])).hex().upper()
    'EF01FFFFFFFF07000300000A'
    """
    if pid not in KNOWN_PIDS:
        raise ValueError(f"unknown packet id 0x{pid:02X}")
    if not 0 < len(payload) <= MAX_PAYLOAD:
        raise ValueError(f"payload must be 1..{MAX_PAYLOAD} bytes, got {len(payload)}")
    if not 0 <= address <= 0xFFFFFFFF:
        raise ValueError("address must fit in 32 bits")
    length = len(payload) + CHECKSUM_LEN
    head = HEADER + struct.pack(">IBH", address, pid, length)
    return head + payload + struct.pack(">H", checksum(pid, payload))


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded packet whose checksum was verified."""

    address: int
    pid: int
    payload: bytes

    def encode(self) -> bytes:
        return encode_packet(self.pid, self.payload, self.address)


class PacketDecoder:
    """Streaming decoder: feed raw bytes, get back verified packets.

    Junk before a header is skipped; a frame with an impossible length or a wrong
    checksum is rejected (counted in ``rejected``) and scanning resumes one byte after
    its start, so a false header inside junk cannot swallow a real packet behind it.

    >>> d = PacketDecoder()
    >>> junk = bytes.fromhex('00EF0155')
    >>> [p.payload.hex() for p in d.feed(junk + bytes.fromhex('EF01FFFFFFFF07000300000A'))]
    ['00']
    >>> list(d.feed(bytes.fromhex('EF01FFFFFFFF07000300000B')))  # bad checksum
    []
    >>> d.rejected  # the false header hidden in the junk, then the bad checksum
    2
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.rejected = 0  # frames dropped for bad checksum / impossible header

    def feed(self, data: bytes) -> list[Packet]:
        self._buffer += data
        return list(self._drain())

    def pending(self) -> int:
        """Bytes held waiting for the rest of a frame."""
        return len(self._buffer)

    def reset(self) -> None:
        self._buffer.clear()

    def _drain(self) -> Iterator[Packet]:
        buf = self._buffer
        while True:
            start = buf.find(HEADER)
            if start < 0:
                # Keep a trailing 0xEF: it may be the first half of a header.
                keep = 1 if buf[-1:] == HEADER[:1] else 0
                del buf[: len(buf) - keep]
                return
            del buf[:start]
            if len(buf) < HEADER_LEN:
                return
            address, pid, length = struct.unpack_from(">IBH", buf, 2)
            if pid not in KNOWN_PIDS or not CHECKSUM_LEN < length <= MAX_PAYLOAD + CHECKSUM_LEN:
                self.rejected += 1
                del buf[:1]
                continue
            end = HEADER_LEN + length
            if len(buf) < end:
                return
            payload = bytes(buf[HEADER_LEN : end - CHECKSUM_LEN])
            (received,) = struct.unpack_from(">H", buf, end - CHECKSUM_LEN)
            if received != checksum(pid, payload):
                self.rejected += 1
                del buf[:1]
                continue
            del buf[:end]
            yield Packet(address, pid, payload)


def split_data(data: bytes, packet_size: int, address: int = DEFAULT_ADDRESS) -> list[bytes]:
    """Frame a bulk transfer as data packets (0x02) ending with an end packet (0x08).

    >>> frames = split_data(bytes(range(256)) * 2, 128)
    >>> [f[6] for f in frames]
    [2, 2, 2, 8]
    >>> [len(f) for f in frames]
    [139, 139, 139, 139]
    """
    if packet_size not in PACKET_SIZES:
        raise ValueError(f"packet size must be one of {PACKET_SIZES}, got {packet_size}")
    if not data:
        raise ValueError("nothing to send")
    chunks = [data[i : i + packet_size] for i in range(0, len(data), packet_size)]
    last = len(chunks) - 1
    return [encode_packet(PID_END_DATA if i == last else PID_DATA, c, address) for i, c in enumerate(chunks)]


def wire_bytes(payload_len: int) -> int:
    """Bytes on the wire for one packet carrying ``payload_len`` payload bytes.

    >>> wire_bytes(1)
    12
    """
    return HEADER_LEN + payload_len + CHECKSUM_LEN


def wire_seconds(n_bytes: int, baud: int) -> float:
    """Time to clock ``n_bytes`` through an 8N1 UART (10 bits per byte).

    >>> round(wire_seconds(5760, 57600), 3)
    1.0
    """
    return n_bytes * 10 / baud
