"""A virtual contactless card for a real ``pcscd`` running the ``vsmartcard-vpcd`` reader driver.

vpcd is a PC/SC reader driver that listens on a TCP port (``CHANNELID`` in the reader config);
a "card" is a TCP client of that port. Every message in both directions is a 2-byte big-endian
length followed by the payload. From vpcd, a 1-byte payload is a control code (0 power off,
1 power on, 2 reset, 4 "send me your ATR"); anything longer is a command APDU that the card must
answer. Connecting the socket inserts the card, closing it removes the card.

The card model answers the pseudo-APDUs an ACR122U-class reader firmware understands for storage
cards (PC/SC part 3), so the driver under test sends exactly the bytes it would send to the real
reader:

- ``FF CA 00 00 00``                  get UID -> UID + 90 00
- ``FF 82 00 <slot> 06 <key>``        load a 6-byte key into a volatile slot (0 or 1)
- ``FF 86 00 00 05 01 00 <blk> 60|61 <slot>``  authenticate a MIFARE Classic sector (key A/B)
- ``FF B0 00 <blk|page> <len>``       read binary (Classic: 16 bytes of an authenticated block;
  Ultralight/NTAG: ``len`` bytes starting at a 4-byte page)

Status words follow the ACR122U manual: 63 00 operation failed (bad key, not authenticated,
address out of range), 67 00 wrong length, 6A 81 function not supported.
"""
from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

SW_OK = b"\x90\x00"
SW_FAILED = b"\x63\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_NOT_SUPPORTED = b"\x6a\x81"
SW_CLA_NOT_SUPPORTED = b"\x6e\x00"

CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4

DEFAULT_KEY = bytes.fromhex("FFFFFFFFFFFF")

# PC/SC part 3 ATR for a contactless storage card: 3B 8F 80 01 80 4F 0C, RID A0 00 00 03 06,
# standard byte (03 = ISO 14443 A part 3), 2-byte card name, 4 RFU bytes, then TCK.
_PCSC_STORAGE_ATR_PREFIX = bytes.fromhex("3B8F8001804F0CA000000306")
CARD_NAME_CLASSIC_1K = b"\x00\x01"
CARD_NAME_CLASSIC_4K = b"\x00\x02"
CARD_NAME_ULTRALIGHT = b"\x00\x03"


def storage_card_atr(card_name: bytes, standard: int = 0x03) -> bytes:
    """The ATR an ACR122U synthesises for a storage card, TCK included (XOR of T0..last)."""
    body = _PCSC_STORAGE_ATR_PREFIX + bytes([standard]) + card_name + b"\x00\x00\x00\x00"
    tck = 0
    for b in body[1:]:
        tck ^= b
    return body + bytes([tck])


@dataclass
class VirtualPicc:
    """Card state and APDU semantics, independent of the transport (unit-testable)."""

    uid: bytes
    atr: bytes
    # Ultralight/NTAG memory as 4-byte pages; MIFARE Classic memory as 16-byte blocks.
    pages: list[bytes] = field(default_factory=list)
    blocks: list[bytes] = field(default_factory=list)
    key_slots: dict[int, bytes] = field(default_factory=dict)
    authenticated_sector: int | None = None
    powered: bool = False
    apdu_log: list[bytes] = field(default_factory=list)

    # ---- factories -------------------------------------------------------------------------
    @classmethod
    def classic_1k(cls, uid: bytes, *, key_a: bytes = DEFAULT_KEY, key_b: bytes = DEFAULT_KEY,
                   data: dict[int, bytes] | None = None) -> "VirtualPicc":
        return cls._classic(uid, 64, CARD_NAME_CLASSIC_1K, key_a, key_b, data or {})

    @classmethod
    def classic_4k(cls, uid: bytes, *, key_a: bytes = DEFAULT_KEY, key_b: bytes = DEFAULT_KEY,
                   data: dict[int, bytes] | None = None) -> "VirtualPicc":
        return cls._classic(uid, 256, CARD_NAME_CLASSIC_4K, key_a, key_b, data or {})

    @classmethod
    def _classic(cls, uid: bytes, n_blocks: int, name: bytes, key_a: bytes, key_b: bytes,
                 data: dict[int, bytes]) -> "VirtualPicc":
        blocks = [bytes(16) for _ in range(n_blocks)]
        # Block 0: UID, BCC, manufacturer data (only meaningful for 4-byte UIDs, as on real cards).
        bcc = 0
        for b in uid[:4]:
            bcc ^= b
        blocks[0] = (uid[:4] + bytes([bcc]) + b"\x08\x04\x00" + bytes(8))[:16]
        card = cls(uid=uid, atr=storage_card_atr(name), blocks=blocks)
        for block in range(n_blocks):
            if card._is_trailer(block):
                blocks[block] = key_a + bytes.fromhex("FF078069") + key_b
        for block, content in data.items():
            if card._is_trailer(block) or block == 0:
                raise ValueError(f"block {block} is not a data block")
            blocks[block] = content.ljust(16, b"\x00")[:16]
        return card

    @classmethod
    def ultralight(cls, uid: bytes, *, n_pages: int = 45, data: bytes = b"") -> "VirtualPicc":
        """NTAG213-sized by default (45 pages); user memory starts at page 4."""
        pages = [bytes(4) for _ in range(n_pages)]
        pages[0] = uid[:3] + b"\x88"
        pages[1] = uid[3:7].ljust(4, b"\x00")
        user = data.ljust(((len(data) + 3) // 4) * 4, b"\x00")
        for i in range(0, len(user), 4):
            pages[4 + i // 4] = user[i:i + 4]
        return cls(uid=uid, atr=storage_card_atr(CARD_NAME_ULTRALIGHT), pages=pages)

    # ---- geometry --------------------------------------------------------------------------
    @staticmethod
    def sector_of(block: int) -> int:
        return block // 4 if block < 128 else 32 + (block - 128) // 16

    def _is_trailer(self, block: int) -> bool:
        if block < 128:
            return block % 4 == 3
        return (block - 128) % 16 == 15

    def _trailer_of_sector(self, sector: int) -> int:
        return sector * 4 + 3 if sector < 32 else 128 + (sector - 32) * 16 + 15

    # ---- control ---------------------------------------------------------------------------
    def control(self, code: int) -> bytes | None:
        if code == CTRL_ATR:
            return self.atr
        if code in (CTRL_OFF, CTRL_RESET):
            # Power loss forgets loaded keys and authentication, as on the real chip/reader.
            self.authenticated_sector = None
            self.key_slots.clear()
        self.powered = code in (CTRL_ON, CTRL_RESET)
        return None

    # ---- APDUs -----------------------------------------------------------------------------
    def transmit(self, apdu: bytes) -> bytes:
        self.apdu_log.append(apdu)
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        cla, ins, p1, p2 = apdu[0], apdu[1], apdu[2], apdu[3]
        if cla != 0xFF:
            return SW_CLA_NOT_SUPPORTED
        if ins == 0xCA:
            if p1 != 0x00:
                return SW_NOT_SUPPORTED  # ATS (P1=01) is for ISO 14443-4 cards only
            return self.uid + SW_OK
        if ins == 0x82:
            if len(apdu) != 11 or apdu[4] != 6 or p2 not in (0, 1):
                return SW_WRONG_LENGTH if len(apdu) != 11 else SW_FAILED
            self.key_slots[p2] = apdu[5:11]
            return SW_OK
        if ins == 0x86:
            return self._authenticate(apdu)
        if ins == 0xB0:
            return self._read(apdu)
        return SW_NOT_SUPPORTED

    def _authenticate(self, apdu: bytes) -> bytes:
        if len(apdu) != 10 or apdu[4] != 5 or apdu[5] != 0x01:
            return SW_WRONG_LENGTH
        block, key_type, slot = apdu[7], apdu[8], apdu[9]
        if not self.blocks or block >= len(self.blocks) or key_type not in (0x60, 0x61):
            self.authenticated_sector = None
            return SW_FAILED
        key = self.key_slots.get(slot)
        trailer = self.blocks[self._trailer_of_sector(self.sector_of(block))]
        expected = trailer[:6] if key_type == 0x60 else trailer[10:16]
        if key is None or key != expected:
            self.authenticated_sector = None
            return SW_FAILED
        self.authenticated_sector = self.sector_of(block)
        return SW_OK

    def _read(self, apdu: bytes) -> bytes:
        if len(apdu) != 5:
            return SW_WRONG_LENGTH
        address, length = apdu[3], apdu[4] or 256
        if self.pages:
            start = address * 4
            memory = b"".join(self.pages)
            if address >= len(self.pages) or length > 16:
                return SW_FAILED
            # Ultralight READ returns 4 pages and wraps around at the end of memory.
            chunk = (memory + memory)[start:start + length]
            return chunk + SW_OK
        if not self.blocks or address >= len(self.blocks) or length != 16:
            return SW_FAILED
        if self.authenticated_sector != self.sector_of(address):
            return SW_FAILED
        content = self.blocks[address]
        if self._is_trailer(address):
            content = bytes(6) + content[6:10] + bytes(6)  # keys never readable, as on the chip
        return content + SW_OK


class VpcdCard:
    """Transport: a TCP client of vpcd that serves one ``VirtualPicc``.

    ``insert()`` connects (the reader sees a card), ``remove()`` closes the socket (the card
    leaves the field). Can be inserted again afterwards.
    """

    def __init__(self, card: VirtualPicc, port: int, host: str = "127.0.0.1") -> None:
        self.card = card
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def insert(self) -> None:
        if self._sock is not None:
            raise RuntimeError("card already inserted")
        sock = socket.create_connection((self.host, self.port), timeout=5)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, args=(sock,), daemon=True,
                                        name="vpcd-card")
        self._thread.start()

    def remove(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
        self.card.control(CTRL_OFF)

    @property
    def inserted(self) -> bool:
        return self._sock is not None

    def __enter__(self) -> "VpcdCard":
        self.insert()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # ---- wire ------------------------------------------------------------------------------
    @staticmethod
    def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            # vpcd writes the length prefix and the APDU in two send()s; with Nagle on its side
            # and delayed ACKs on ours every APDU would stall ~40 ms (measured). Quick ACKs keep
            # the virtual reader as fast as a USB one. Linux clears the flag, so set it per recv.
            if hasattr(socket, "TCP_QUICKACK"):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                header = self._recv_exact(sock, 2)
                if header is None:
                    return
                (length,) = struct.unpack(">H", header)
                payload = self._recv_exact(sock, length)
                if payload is None:
                    return
                reply = self.card.control(payload[0]) if length == 1 else self.card.transmit(payload)
                if reply is not None:
                    sock.sendall(struct.pack(">H", len(reply)) + reply)
        except OSError:
            return  # socket closed by remove(): the card left the field
        except BaseException as exc:  # surfaced to the test through .error
            self.error = exc
