"""Exceptions raised by the R30x driver.

They carry a stable snake_case ``code`` and Spanish/English texts (``DeviceError``); the
fingerprint feature maps them to API errors (agent/biometric/errors.py).
"""
from __future__ import annotations

from agent.drivers.errors import DeviceError
from agent.drivers.r30x.commands import Status


class R30xError(DeviceError):
    """Base of every sensor-side failure."""


class ReplyTimeout(R30xError):
    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(
            "sensor_timeout",
            f"El lector de huellas no respondió a tiempo ({what}, {seconds:.1f} s)",
            f"Fingerprint sensor did not answer in time ({what}, {seconds:.1f} s)",
        )


class ChecksumError(R30xError):
    def __init__(self, rejected: int) -> None:
        super().__init__(
            "sensor_corrupt_reply",
            f"Respuesta corrupta del lector de huellas ({rejected} paquetes con suma inválida)",
            f"Corrupt reply from the fingerprint sensor ({rejected} packets with a bad checksum)",
        )


class AddressMismatch(R30xError):
    def __init__(self, expected: int, got: int) -> None:
        super().__init__(
            "sensor_wrong_address",
            f"El lector respondió con la dirección {got:08X}, se esperaba {expected:08X}",
            f"Sensor answered from address {got:08X}, expected {expected:08X}",
        )
        self.expected = expected
        self.got = got


class UnexpectedPacket(R30xError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            "sensor_protocol_error",
            f"Paquete inesperado del lector de huellas: {detail}",
            f"Unexpected packet from the fingerprint sensor: {detail}",
        )


class PortLost(R30xError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            "sensor_disconnected",
            "El lector de huellas está desconectado",
            f"Fingerprint sensor disconnected ({detail})",
        )


class SensorStatusError(R30xError):
    """The sensor answered with a non-OK confirmation code where OK was required."""

    def __init__(self, status: Status, raw: int, op: str) -> None:
        super().__init__(f"sensor_{status.code}", status.es, f"{status.en} (0x{raw:02X} on {op})")
        self.sensor_status = status
        self.raw_status = raw
