"""Pick the document parser from the symbology and the payload's own signature.

Anything that matches no document raises :class:`NotAnIdDocument`; a known document that is
damaged raises :class:`InvalidIdPayload`. Both are :class:`IdCardError`; nothing else escapes.

>>> from agent.idcard.samples import SyntheticPerson, co_cedula_payload
>>> p = SyntheticPerson("CO", "52123456", "LUZ", None, "GIL", None, "F", "1970-01-02", "A-")
>>> parse_any(co_cedula_payload(p), "PDF417").document_number
'52123456'
>>> parse_any(b"7702004003508", "EAN13")
Traceback (most recent call last):
...
agent.idcard.errors.NotAnIdDocument: the barcode is not an identity document
"""
from __future__ import annotations

from collections.abc import Callable

from agent.idcard.errors import IdCardError, InvalidIdPayload, NotAnIdDocument
from agent.idcard.parsers.ar_dni import looks_like_ar_dni, parse_ar_dni
from agent.idcard.parsers.cl_cedula import looks_like_cl_2002, looks_like_cl_qr, parse_cl_2002, parse_cl_qr
from agent.idcard.parsers.co_cedula import looks_like_co_cedula, parse_co_cedula
from agent.idcard.parsers.mrz import text_lines
from agent.idcard.parsers.mrz_td1 import parse_td1
from agent.idcard.parsers.mrz_td3 import parse_td3
from agent.idcard.schema import IdDocument

Parser = Callable[[bytes], IdDocument]
_PDF417: list[tuple[Callable[[bytes], bool], Parser]] = [
    (looks_like_co_cedula, parse_co_cedula),
    (looks_like_ar_dni, parse_ar_dni),
    (looks_like_cl_2002, parse_cl_2002),
]
MAX_PAYLOAD = 4096  # no ID barcode is larger; refuse before doing any work on junk


def _normalize_symbology(symbology: str) -> str:
    """zxing-cpp says 'PDF417' / 'QRCode', pyzbar 'PDF417' / 'QRCODE', people 'qr' / 'mrz'."""
    name = symbology.strip().upper().replace("-", "").replace("_", "").replace(" ", "")
    return {"QRCODE": "QR", "MICROQRCODE": "QR", "COMPACTPDF417": "PDF417", "TD1": "MRZ"}.get(name, name)


def parse_mrz(data: bytes) -> IdDocument:
    """TD3 (passport, 2 lines) or TD1 (ID card, 3 lines)."""
    lines = text_lines(data)
    if len(lines) == 2 or (len(lines) == 1 and len(lines[0]) == 88):
        return parse_td3(data)
    return parse_td1(data)


def parse_any(data: bytes, symbology: str) -> IdDocument:
    """Parse raw barcode (or MRZ text) bytes into an :class:`IdDocument`."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("data must be bytes")
    data = bytes(data)
    if not data or len(data) > MAX_PAYLOAD:
        raise NotAnIdDocument()
    kind = _normalize_symbology(symbology)
    try:
        if kind == "PDF417":
            for looks_like, parse in _PDF417:
                if looks_like(data):
                    return parse(data)
        elif kind == "QR":
            if looks_like_cl_qr(data):
                return parse_cl_qr(data)
            if looks_like_ar_dni(data):  # DNIs issued from 2026
                return parse_ar_dni(data)
        elif kind in ("MRZ", "TEXT"):
            return parse_mrz(data)
    except IdCardError:
        raise
    except (ValueError, IndexError, KeyError, UnicodeError) as exc:
        # A bug-shaped failure on hostile input must still be a clean domain error.
        raise InvalidIdPayload("damaged identity barcode", "codigo de documento danado") from exc
    raise NotAnIdDocument()
