"""R30x instruction codes, confirmation (status) codes and reply parsers. Pure, no I/O.

>>> Status.from_code(0x02) is Status.NO_FINGER
True
>>> Status.from_code(0x77) is Status.UNKNOWN
True
>>> Status.NO_FINGER.code
'no_finger'
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from agent.drivers.r30x.protocol import DEFAULT_ADDRESS, PACKET_SIZES  # noqa: F401 (doctest)


class Op(enum.IntEnum):
    """Instruction codes (first payload byte of a command packet)."""

    GEN_IMG = 0x01
    IMG2TZ = 0x02
    MATCH = 0x03
    SEARCH = 0x04
    REG_MODEL = 0x05
    STORE = 0x06
    LOAD_CHAR = 0x07
    UP_CHAR = 0x08
    DOWN_CHAR = 0x09
    UP_IMAGE = 0x0A
    DOWN_IMAGE = 0x0B
    DELETE = 0x0C
    EMPTY = 0x0D
    SET_SYS_PARA = 0x0E
    READ_SYS_PARA = 0x0F
    SET_PWD = 0x12
    VFY_PWD = 0x13
    SET_ADDR = 0x15
    TEMPLATE_COUNT = 0x1D
    LED_CONTROL = 0x35  # R503 (aura LED ring); older models answer "invalid register"/error
    SOFT_RESET = 0x3D


class Status(enum.Enum):
    """Confirmation codes: (wire value, stable snake_case code, Spanish, English)."""

    OK = (0x00, "ok", "Correcto", "OK")
    RECEIVE_ERROR = (0x01, "receive_error", "Error de comunicación con el lector", "Sensor packet receive error")
    NO_FINGER = (0x02, "no_finger", "No hay dedo en el lector", "No finger on the sensor")
    CAPTURE_FAILED = (0x03, "capture_failed", "No se pudo capturar la huella", "Fingerprint capture failed")
    TOO_DRY = (0x04, "too_dry", "Imagen demasiado seca o clara", "Image too dry or light")
    TOO_WET = (0x05, "too_wet", "Imagen demasiado húmeda o borrosa", "Image too wet or blurry")
    TOO_MESSY = (0x06, "too_messy", "Imagen de huella desordenada; limpie el dedo", "Fingerprint image too messy")
    TOO_FEW_FEATURES = (0x07, "too_few_features", "Muy pocos rasgos; coloque más dedo", "Too few features in the image")
    NO_MATCH = (0x08, "no_match", "La huella no coincide", "Fingerprints do not match")
    NOT_FOUND = (0x09, "not_found", "Huella no encontrada", "No matching fingerprint found")
    ENROLL_MISMATCH = (0x0A, "enroll_mismatch", "Las dos capturas no coinciden", "The two captures differ")
    BAD_SLOT = (0x0B, "bad_slot", "Posición de biblioteca inválida", "Library slot out of range")
    READ_TEMPLATE_ERROR = (0x0C, "read_template_error", "Error leyendo plantilla", "Error reading template")
    UPLOAD_FAILED = (0x0D, "upload_failed", "No se pudo subir la plantilla", "Template upload failed")
    CANNOT_RECEIVE = (0x0E, "cannot_receive", "El lector no recibió los datos", "Sensor cannot receive data packets")
    UPLOAD_IMAGE_FAILED = (0x0F, "upload_image_failed", "No se pudo subir la imagen", "Image upload failed")
    DELETE_FAILED = (0x10, "delete_failed", "No se pudo borrar", "Delete failed")
    EMPTY_FAILED = (0x11, "empty_failed", "No se pudo vaciar la biblioteca", "Emptying the library failed")
    WRONG_PASSWORD = (0x13, "wrong_password", "Contraseña del lector incorrecta", "Wrong sensor password")
    INVALID_IMAGE = (0x15, "invalid_image", "Imagen inválida", "No valid primary image")
    FLASH_ERROR = (0x18, "flash_error", "Error de memoria del lector", "Sensor flash write error")
    UNDEFINED_ERROR = (0x19, "undefined_error", "Error no definido del lector", "Undefined sensor error")
    INVALID_REGISTER = (0x1A, "invalid_register", "Registro inválido", "Invalid register number")
    BAD_REGISTER_CONFIG = (0x1B, "bad_register_config", "Configuración de registro inválida", "Bad register config")
    BAD_NOTEPAD_PAGE = (0x1C, "bad_notepad_page", "Página de bloc inválida", "Wrong notepad page")
    PORT_FAILED = (0x1D, "port_failed", "Fallo del puerto del lector", "Sensor port operation failed")
    LIBRARY_FULL = (0x1F, "library_full", "Biblioteca llena", "Fingerprint library full")
    ADDRESS_ERROR = (0x20, "address_error", "Dirección del lector incorrecta", "Sensor address error")
    PASSWORD_REQUIRED = (0x21, "password_required", "Debe verificarse la contraseña", "Password must be verified first")
    UNKNOWN = (-1, "unknown_status", "Código de estado desconocido del lector", "Unknown sensor status code")

    def __init__(self, value: int, code: str, es: str, en: str) -> None:
        self.wire = value
        self.code = code
        self.es = es
        self.en = en

    @classmethod
    def from_code(cls, value: int) -> "Status":
        return _BY_WIRE.get(value, cls.UNKNOWN)


_BY_WIRE = {s.wire: s for s in Status}


class LedMode(enum.IntEnum):
    """R503 aura LED control codes."""

    BREATHING = 1
    FLASHING = 2
    ON = 3
    OFF = 4
    FADE_ON = 5
    FADE_OFF = 6


class LedColor(enum.IntEnum):
    RED = 1
    BLUE = 2
    PURPLE = 3


class SysParam(enum.IntEnum):
    """Parameter numbers for SetSysPara (0x0E)."""

    BAUD = 4  # value N: baud = 9600 * N, N in 1..12
    SECURITY_LEVEL = 5  # 1..5
    PACKET_SIZE = 6  # code 0..3 -> 32/64/128/256


@dataclass(frozen=True, slots=True)
class SystemParameters:
    """Decoded ReadSysPara reply (16 bytes after the status byte).

    >>> raw = bytes.fromhex('0004' '0009' '03E8' '0003' 'FFFFFFFF' '0002' '0006')
    >>> p = SystemParameters.parse(raw)
    >>> (p.library_size, p.security_level, p.packet_size, p.baud, p.address == DEFAULT_ADDRESS)
    (1000, 3, 128, 57600, True)
    """

    status_register: int
    system_id: int
    library_size: int
    security_level: int
    address: int
    packet_size: int
    baud: int

    @classmethod
    def parse(cls, data: bytes) -> "SystemParameters":
        if len(data) < 16:
            raise ValueError(f"ReadSysPara reply must carry 16 bytes, got {len(data)}")
        status_reg, sys_id, lib, level, addr, size_code, baud_n = struct.unpack(">HHHHIHH", data[:16])
        if size_code >= len(PACKET_SIZES):
            raise ValueError(f"invalid packet size code {size_code}")
        return cls(status_reg, sys_id, lib, level, addr, PACKET_SIZES[size_code], 9600 * baud_n)


def baud_code(baud: int) -> int:
    """SetSysPara value for a baud rate.

    >>> baud_code(57600)
    6
    >>> baud_code(12345)
    Traceback (most recent call last):
    ValueError: baud must be 9600 x N (N 1..12), got 12345
    """
    n, rest = divmod(baud, 9600)
    if rest or not 1 <= n <= 12:
        raise ValueError(f"baud must be 9600 x N (N 1..12), got {baud}")
    return n
