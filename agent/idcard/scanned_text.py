"""Text from a hand-held scanner -> identity document, through the same parsers as the camera.

A keyboard-wedge PDF417/QR scanner types the payload and Enter (see
:class:`agent.drivers.keymap.WedgeDecoder`); a serial MRZ reader sends the MRZ lines (see
:mod:`agent.drivers.mrz_serial`). Neither says which symbology it read, so the text's own shape
decides: MRZ lines, a URL (Chilean QR), otherwise an '@'-separated Argentine DNI. The Colombian
cedula's PDF417 holds NUL bytes and latin-1 names, which no keyboard can type: a wedge scanner
cannot carry it (use the camera or a serial scanner that keeps NULs).

>>> from agent.idcard.samples import SyntheticPerson, ar_dni_payload, td1_mrz
>>> p = SyntheticPerson("AR", "23456789", "JUAN", None, "PAZ", None, "M", "1985-03-04", None)
>>> parse_scanned(ar_dni_payload(p).decode()).document_number
'23456789'
>>> parse_scanned(td1_mrz(p)).card_type
'DNI'
>>> scanned_symbology("https://portal.sidiv.registrocivil.cl/docstatus?RUN=1-9")
'QR'
"""
from __future__ import annotations

import re

from agent.idcard.parsers import parse_any
from agent.idcard.schema import IdDocument

_MRZ_TEXT = re.compile(r"^[A-Z0-9<]{15,44}(\r?\n[A-Z0-9<]{1,44}){1,2}\s*$")


def scanned_symbology(text: str) -> str:
    stripped = text.strip()
    if _MRZ_TEXT.match(stripped.upper()):
        return "MRZ"
    if stripped.lower().startswith(("http://", "https://")):
        return "QR"
    return "PDF417"


def parse_scanned(text: str | bytes) -> IdDocument:
    """Parse scanner text; raises the parsers' ``IdCardError`` (NotAnIdDocument, InvalidIdPayload)."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8")
    return parse_any(raw.strip(b"\r\n"), scanned_symbology(raw.decode("utf-8", "replace")))
