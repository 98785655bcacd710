"""R30x command set on top of a ``Link``: one method per instruction, typed results.

Statuses a caller is expected to branch on (no finger, too messy, no match ...) come back as
``Status`` values; statuses that mean the exchange itself failed raise ``SensorStatusError``.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from agent.drivers.r30x.commands import LedColor, LedMode, Op, Status, SysParam, SystemParameters
from agent.drivers.r30x.errors import SensorStatusError, UnexpectedPacket
from agent.drivers.r30x.link import Link
from agent.drivers.r30x.protocol import PACKET_SIZES, TEMPLATE_SIZE

CHAR_BUFFERS = (1, 2)


@dataclass(frozen=True, slots=True)
class Reply:
    status: Status
    raw_status: int
    data: bytes


@dataclass(frozen=True, slots=True)
class MatchResult:
    status: Status  # OK (matched by the sensor's own level) or NO_MATCH
    score: int


class R30xClient:
    def __init__(self, link: Link, packet_size: int = 128, capture_timeout: float = 2.0) -> None:
        if packet_size not in PACKET_SIZES:
            raise ValueError(f"packet size must be one of {PACKET_SIZES}")
        self.link = link
        self.packet_size = packet_size
        # GenImg/Img2Tz run the sensor's imaging and DSP (hundreds of ms on an R307), so they get
        # a longer reply deadline than plain register commands.
        self.capture_timeout = capture_timeout

    # -- generic exchange ----------------------------------------------------------------------
    def command(self, op: Op, args: bytes = b"", timeout: float | None = None) -> Reply:
        self.link.send_command(bytes([op]) + args)
        packet = self.link.read_reply(op.name, timeout)
        raw = packet.payload[0]
        return Reply(Status.from_code(raw), raw, packet.payload[1:])

    def checked(self, op: Op, args: bytes = b"", timeout: float | None = None) -> bytes:
        reply = self.command(op, args, timeout)
        if reply.status is not Status.OK:
            raise SensorStatusError(reply.status, reply.raw_status, op.name)
        return reply.data

    # -- session -------------------------------------------------------------------------------
    def verify_password(self, password: int) -> None:
        self.checked(Op.VFY_PWD, struct.pack(">I", password))

    def read_system_parameters(self) -> SystemParameters:
        data = self.checked(Op.READ_SYS_PARA)
        try:
            return SystemParameters.parse(data)
        except ValueError as exc:
            raise UnexpectedPacket(str(exc)) from exc

    def set_system_parameter(self, param: SysParam, value: int) -> None:
        self.checked(Op.SET_SYS_PARA, bytes([param, value]))

    def template_count(self) -> int:
        data = self.checked(Op.TEMPLATE_COUNT)
        if len(data) < 2:
            raise UnexpectedPacket("TemplateCount reply too short")
        return int.from_bytes(data[:2], "big")

    def led(self, mode: LedMode, color: LedColor, speed: int = 0x80, cycles: int = 0) -> None:
        """R503 aura LED (other models answer with an error status, raised)."""
        self.checked(Op.LED_CONTROL, bytes([mode, speed & 0xFF, color, cycles & 0xFF]))

    # -- capture and matching ------------------------------------------------------------------
    def gen_img(self) -> Status:
        return self.command(Op.GEN_IMG, timeout=self.capture_timeout).status

    def img2tz(self, buffer: int) -> Status:
        _check_buffer(buffer)
        return self.command(Op.IMG2TZ, bytes([buffer]), timeout=self.capture_timeout).status

    def reg_model(self) -> Status:
        return self.command(Op.REG_MODEL).status

    def match(self) -> MatchResult:
        reply = self.command(Op.MATCH)
        if reply.status not in (Status.OK, Status.NO_MATCH):
            raise SensorStatusError(reply.status, reply.raw_status, "MATCH")
        if len(reply.data) < 2:
            raise UnexpectedPacket("Match reply without a score")
        return MatchResult(reply.status, int.from_bytes(reply.data[:2], "big"))

    # -- bulk transfers ------------------------------------------------------------------------
    def up_char(self, buffer: int) -> bytes:
        """Upload a char buffer (sensor -> host): the template to store on the host."""
        _check_buffer(buffer)
        self.checked(Op.UP_CHAR, bytes([buffer]))
        data = self.link.read_data("UP_CHAR data")
        if len(data) != TEMPLATE_SIZE:
            raise UnexpectedPacket(f"template of {len(data)} bytes, expected {TEMPLATE_SIZE}")
        return data

    def down_char(self, buffer: int, template: bytes) -> None:
        """Download a template (host -> sensor) into a char buffer."""
        _check_buffer(buffer)
        if len(template) != TEMPLATE_SIZE:
            raise ValueError(f"template must be {TEMPLATE_SIZE} bytes, got {len(template)}")
        self.checked(Op.DOWN_CHAR, bytes([buffer]))
        self.link.send_data(template, self.packet_size)


def _check_buffer(buffer: int) -> None:
    if buffer not in CHAR_BUFFERS:
        raise ValueError(f"char buffer must be 1 or 2, got {buffer}")
