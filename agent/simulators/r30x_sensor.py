"""A fake R30x fingerprint sensor on a real pty, speaking the UART protocol byte-exactly.

The driver opens ``sensor.path`` with pyserial exactly as it would open /dev/ttyUSB0. The fake's
framing is written independently of ``agent.drivers.r30x.protocol`` on purpose: a bug shared by
both sides would otherwise pass every test.

Simulated fingers: ``place_finger("ana")`` puts identity "ana" on the glass; each identity has a
deterministic 512-byte template, and a capture of quality q < 1 corrupts a share of its bytes, so
Match scores are high for the same identity, lower for poor captures and near zero for another
identity. ``condition`` forces the sensor's failure statuses ("messy", "few_features", "dry",
"wet"). With ``baud`` set, bytes are paced in both directions at the UART's 10 bits per byte.

Fault injection for tests: ``reply_address``, ``corrupt_replies``, ``junk_before_reply``,
``silent`` (stalled line), ``unplug()`` / ``replug()`` (USB pulled; ``path`` is a stable symlink
like /dev/serial/by-id/..., repointed on replug).

Usable by the agent's simulated mode: ``FakeR30xSensor(...).start()`` runs in a daemon thread.

Long on purpose: one device's whole command set behind one pty; split, the state a command
changes (image, buffers, verified password) would be shared across modules.
"""
from __future__ import annotations

import hashlib
import os
import random
import select
import struct
import tempfile
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

TEMPLATE_SIZE = 512
_SIZES = (32, 64, 128, 256)

# Confirmation codes the fake emits (same wire values as the datasheet).
OK, RECV_ERR, NO_FINGER, TOO_DRY, TOO_WET, MESSY, FEW_FEATURES, NO_MATCH = 0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x07, 0x08
ENROLL_MISMATCH, UPLOAD_FAILED, CANNOT_RECEIVE, WRONG_PWD, INVALID_IMAGE = 0x0A, 0x0D, 0x0E, 0x13, 0x15
INVALID_REG, NEED_PWD = 0x1A, 0x21

_CONDITIONS = {"messy": MESSY, "few_features": FEW_FEATURES, "dry": TOO_DRY, "wet": TOO_WET}


def identity_template(identity: str) -> bytes:
    """The clean template every capture of ``identity`` approximates."""
    body = hashlib.shake_256(b"r30x-fake:" + identity.encode()).digest(TEMPLATE_SIZE - 4)
    return b"\x03\x01\x00\x00" + body  # a fixed header, like the real format's


def similarity(a: bytes, b: bytes) -> float:
    if len(a) != len(b) or not a:
        return 0.0
    return sum(x == y for x, y in zip(a, b)) / len(a)


def score(a: bytes, b: bytes) -> int:
    """0..300; identical templates give 300, unrelated ones ~1."""
    return round(similarity(a, b) * 300)


def frame(pid: int, payload: bytes, address: int) -> bytes:
    length = len(payload) + 2
    total = pid + (length >> 8) + (length & 0xFF) + sum(payload)
    return b"\xef\x01" + address.to_bytes(4, "big") + bytes([pid]) + length.to_bytes(2, "big") + payload + (total & 0xFFFF).to_bytes(2, "big")


@dataclass
class Finger:
    identity: str
    quality: float = 1.0
    condition: str | None = None


@dataclass
class _CharBuffer:
    data: bytes | None = None
    identity: str | None = None


@dataclass
class FakeR30xSensor:
    address: int = 0xFFFFFFFF
    password: int = 0
    packet_size: int = 128
    baud: int | None = None  # None: no pacing (fast tests); 57600: wire-time faithful
    security_level: int = 3
    model: str = "R307"
    processing_seconds: float = 0.0  # simulated DSP time for GenImg/Img2Tz/Match

    # fault injection
    reply_address: int | None = None
    corrupt_replies: int = 0  # next N replies carry a wrong checksum
    junk_before_reply: bytes = b""
    silent: bool = False

    finger: Finger | None = None
    received_ops: list[int] = field(default_factory=list)
    led_state: tuple[int, int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.packet_size not in _SIZES:
            raise ValueError(f"packet size must be one of {_SIZES}")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1
        self._dir = Path(tempfile.mkdtemp(prefix="fake-r30x-"))
        self.path = str(self._dir / "ttyFINGER0")  # stable name, like /dev/serial/by-id/...
        self._rx = bytearray()
        self._image: Finger | None = None
        self._buffers = {1: _CharBuffer(), 2: _CharBuffer()}
        self._verified = False
        self._awaiting_data: int | None = None
        self._incoming = bytearray()
        self._captures = 0
        self._rx_clock = 0.0
        self._tx_clock = 0.0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "FakeR30xSensor":
        self._open_pty()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fake-r30x", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)
        self._close_pty()

    def __enter__(self) -> "FakeR30xSensor":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def unplug(self) -> None:
        """USB cable pulled: the tty disappears and the driver's reads fail."""
        with self._lock:
            self._close_pty()

    def replug(self) -> None:
        """Plugged back in: a new tty behind the same stable path; the sensor rebooted."""
        with self._lock:
            self._open_pty()
            self._verified = False
            self._buffers = {1: _CharBuffer(), 2: _CharBuffer()}

    # -- the simulated person ------------------------------------------------------------------
    def place_finger(self, identity: str, quality: float = 1.0, condition: str | None = None) -> None:
        if condition is not None and condition not in _CONDITIONS:
            raise ValueError(f"condition must be one of {sorted(_CONDITIONS)}")
        self.finger = Finger(identity, quality, condition)

    def lift_finger(self) -> None:
        self.finger = None

    # -- pty plumbing --------------------------------------------------------------------------
    def _open_pty(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line discipline: bytes pass untouched
        tmp = self.path + ".new"
        os.symlink(os.ttyname(self._slave), tmp)
        os.replace(tmp, self.path)
        self._rx.clear()

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = -1
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            master = self._master
            if master < 0:
                time.sleep(0.02)
                continue
            try:
                ready, _, _ = select.select([master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(master, 4096)
            except OSError:
                time.sleep(0.02)  # unplugged underneath us (or slave not yet reopened)
                continue
            arrived = time.monotonic()
            if self.baud:
                # The bytes left the host at once but a real UART needs wire time to carry them.
                self._rx_clock = max(self._rx_clock, arrived) + len(data) * 10 / self.baud
                _sleep_until(self._rx_clock)
            self._rx += data
            self._process()

    def _send(self, data: bytes) -> None:
        master = self._master
        if master < 0:
            return
        if not self.baud:
            os.write(master, data)
            return
        per_byte = 10 / self.baud
        start = max(time.monotonic(), self._tx_clock)
        chunk = max(1, self.baud // 10 // 500)  # ~2 ms of wire per write
        for offset in range(0, len(data), chunk):
            piece = data[offset : offset + chunk]
            _sleep_until(start + (offset + len(piece)) * per_byte)
            os.write(master, piece)
        self._tx_clock = start + len(data) * per_byte

    # -- framing (independent of the agent's codec) -------------------------------------------
    def _process(self) -> None:
        buf = self._rx
        while True:
            start = buf.find(b"\xef\x01")
            if start < 0:
                del buf[: max(0, len(buf) - 1)]
                return
            del buf[:start]
            if len(buf) < 9:
                return
            address = int.from_bytes(buf[2:6], "big")
            pid = buf[6]
            length = int.from_bytes(buf[7:9], "big")
            if length < 3 or length > 258:
                del buf[:1]
                continue
            if len(buf) < 9 + length:
                return
            payload = bytes(buf[9 : 9 + length - 2])
            received = int.from_bytes(buf[7 + length : 9 + length], "big")
            del buf[: 9 + length]
            if address != self.address:
                continue  # a real sensor ignores packets for another address
            expected = (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF
            if received != expected:
                if pid == 0x01:
                    self._reply(RECV_ERR)
                else:
                    self._awaiting_data = None  # a broken bulk transfer is abandoned
                continue
            if pid == 0x01:
                self._command(payload)
            elif pid in (0x02, 0x08):
                self._data(pid, payload)

    def _reply(self, status: int, data: bytes = b"", address: int | None = None) -> None:
        if self.silent:
            return
        addr = self.reply_address if self.reply_address is not None else (self.address if address is None else address)
        packet = frame(0x07, bytes([status]) + data, addr)
        if self.corrupt_replies:
            self.corrupt_replies -= 1
            packet = packet[:-1] + bytes([packet[-1] ^ 0x5A])
        self._send(self.junk_before_reply + packet)

    def _send_data(self, data: bytes) -> None:
        size = self.packet_size
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        out = b"".join(frame(0x08 if i == len(chunks) - 1 else 0x02, c, self.address) for i, c in enumerate(chunks))
        self._send(out)

    def _data(self, pid: int, payload: bytes) -> None:
        if self._awaiting_data is None:
            return
        self._incoming += payload
        if pid == 0x08:
            buffer = self._awaiting_data
            self._awaiting_data = None
            if len(self._incoming) == TEMPLATE_SIZE:
                self._buffers[buffer] = _CharBuffer(bytes(self._incoming), None)
            else:
                self._buffers[buffer] = _CharBuffer()  # a wrong-size download leaves nothing usable
            self._incoming.clear()

    # -- instruction set -----------------------------------------------------------------------
    def _command(self, payload: bytes) -> None:
        op, args = payload[0], payload[1:]
        self.received_ops.append(op)
        if op == 0x13:  # VfyPwd
            if len(args) != 4:
                return self._reply(RECV_ERR)
            self._verified = int.from_bytes(args, "big") == self.password
            return self._reply(OK if self._verified else WRONG_PWD)
        if self.password and not self._verified:
            return self._reply(NEED_PWD)
        handler = _HANDLERS.get(op)
        if handler is None:
            return self._reply(RECV_ERR)
        handler(self, args)

    def _busy(self) -> None:
        if self.processing_seconds:
            time.sleep(self.processing_seconds)

    def _gen_img(self, args: bytes) -> None:
        self._busy()
        finger = self.finger
        if finger is None:
            return self._reply(NO_FINGER)
        self._image = finger
        self._reply(OK)

    def _img2tz(self, args: bytes) -> None:
        if len(args) != 1 or args[0] not in (1, 2):
            return self._reply(RECV_ERR)
        self._busy()
        image = self._image
        if image is None:
            return self._reply(INVALID_IMAGE)
        if image.condition:
            return self._reply(_CONDITIONS[image.condition])
        self._captures += 1
        self._buffers[args[0]] = _CharBuffer(_capture(image, self._captures), image.identity)
        self._reply(OK)

    def _reg_model(self, args: bytes) -> None:
        one, two = self._buffers[1], self._buffers[2]
        if one.data is None or two.data is None or similarity(one.data, two.data) < 0.5:
            return self._reply(ENROLL_MISMATCH)
        merged = identity_template(one.identity) if one.identity and one.identity == two.identity else one.data
        self._buffers[1] = self._buffers[2] = _CharBuffer(merged, one.identity)
        self._reply(OK)

    def _match(self, args: bytes) -> None:
        self._busy()
        one, two = self._buffers[1].data, self._buffers[2].data
        value = score(one, two) if one is not None and two is not None else 0
        # The sensor's own verdict uses its security level; the agent applies its own threshold.
        matched = value >= 10 * self.security_level
        self._reply(OK if matched else NO_MATCH, value.to_bytes(2, "big"))

    def _up_char(self, args: bytes) -> None:
        if len(args) != 1 or args[0] not in (1, 2):
            return self._reply(RECV_ERR)
        data = self._buffers[args[0]].data
        if data is None:
            return self._reply(UPLOAD_FAILED)
        self._reply(OK)
        self._send_data(data)

    def _down_char(self, args: bytes) -> None:
        if len(args) != 1 or args[0] not in (1, 2):
            return self._reply(RECV_ERR)
        self._awaiting_data = args[0]
        self._incoming.clear()
        self._reply(OK)

    def _read_sys_para(self, args: bytes) -> None:
        data = struct.pack(
            ">HHHHIHH", 0x0004, 0x0009, 1000 if self.model == "R307" else 200, self.security_level,
            self.address, _SIZES.index(self.packet_size), (self.baud or 57600) // 9600,
        )
        self._reply(OK, data)

    def _set_sys_para(self, args: bytes) -> None:
        if len(args) != 2:
            return self._reply(RECV_ERR)
        param, value = args
        if param == 4 and 1 <= value <= 12:
            self._reply(OK)
            if self.baud:
                self.baud = 9600 * value
            return
        if param == 5 and 1 <= value <= 5:
            self.security_level = value
            return self._reply(OK)
        if param == 6 and value < len(_SIZES):
            self.packet_size = _SIZES[value]
            return self._reply(OK)
        self._reply(INVALID_REG)

    def _set_pwd(self, args: bytes) -> None:
        if len(args) != 4:
            return self._reply(RECV_ERR)
        self.password = int.from_bytes(args, "big")
        self._reply(OK)

    def _set_addr(self, args: bytes) -> None:
        if len(args) != 4:
            return self._reply(RECV_ERR)
        self.address = int.from_bytes(args, "big")
        self._reply(OK)  # the reply already comes from the new address

    def _template_count(self, args: bytes) -> None:
        self._reply(OK, (0).to_bytes(2, "big"))  # the host keeps templates; the flash library is unused

    def _led(self, args: bytes) -> None:
        if self.model != "R503" or len(args) != 4:
            return self._reply(RECV_ERR)
        self.led_state = (args[0], args[1], args[2], args[3])
        self._reply(OK)

    def _soft_reset(self, args: bytes) -> None:
        self._reply(OK)


_HANDLERS = {
    0x01: FakeR30xSensor._gen_img,
    0x02: FakeR30xSensor._img2tz,
    0x03: FakeR30xSensor._match,
    0x05: FakeR30xSensor._reg_model,
    0x08: FakeR30xSensor._up_char,
    0x09: FakeR30xSensor._down_char,
    0x0E: FakeR30xSensor._set_sys_para,
    0x0F: FakeR30xSensor._read_sys_para,
    0x12: FakeR30xSensor._set_pwd,
    0x15: FakeR30xSensor._set_addr,
    0x1D: FakeR30xSensor._template_count,
    0x35: FakeR30xSensor._led,
    0x3D: FakeR30xSensor._soft_reset,
}


def _capture(finger: Finger, counter: int) -> bytes:
    """One capture's characteristics: the clean template with (1 - quality) of its bytes changed."""
    clean = bytearray(identity_template(finger.identity))
    disturbed = int((1.0 - max(0.0, min(1.0, finger.quality))) * (TEMPLATE_SIZE - 4))
    rng = random.Random(f"{finger.identity}:{counter}")  # deterministic per capture
    for pos in rng.sample(range(4, TEMPLATE_SIZE), disturbed):
        clean[pos] ^= rng.randrange(1, 256)  # never XOR with 0: the byte really changes
    return bytes(clean)


def _sleep_until(deadline: float) -> None:
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)
