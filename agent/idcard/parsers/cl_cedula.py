"""Chilean cedula de identidad: the QR URL (cards since 2013) and the 2002-era PDF417.

QR: ``https://portal.sidiv.registrocivil.cl/docstatus?RUN=...&type=CEDULA&serial=...&mrz=...`` or,
on 2025 cards, host ``portal.nuevosidiv.registrocivil.cl`` path ``/document-validity``. Only
those hosts are accepted: a URL anywhere else is not a Chilean ID, whatever its parameters say.
``mrz`` = document number (9) + check + birth YYMMDD + check + expiry YYMMDD + check; it holds no
name, so names stay empty (with a warning) and the attendant types them.

2002 PDF417 (>= 419 characters): [0,9) RUN with check digit, [19,49) paternal surname,
[49,52) nationality, [52,58) expiry YYMMDD, [58,68) serial. No birth date, no given names.

>>> from agent.idcard.samples import SyntheticPerson, cl_qr_url, cl_2002_payload
>>> p = SyntheticPerson("CL", "15988779-0", "ANA", None, "ÑANCO", "ROJAS", "F", "1984-07-09", None)
>>> url = cl_qr_url(p, serial="110515489", expiry="2030-07-09")
>>> doc = parse_cl_qr(url)
>>> doc.document_number, doc.document_type, doc.birth_date, doc.expiry, doc.warnings
('15988779-0', 'RUT', '1984-07-09', '2030-07-09', ('names_not_in_barcode',))
>>> doc.card_type, doc.card_serial
('CEDULA', '110515489')
>>> parse_cl_qr(url.replace(b"registrocivil.cl", b"registrocivil.cl.evil.com"))
Traceback (most recent call last):
...
agent.idcard.errors.NotAnIdDocument: the barcode is not an identity document
>>> old = parse_cl_2002(cl_2002_payload(p, expiry="2012-01-31"))
>>> old.document_number, old.first_surname, old.given_names, old.expiry
('15988779-0', 'ÑANCO', None, '2012-01-31')
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from stdnum.cl import rut

from agent.idcard.errors import InvalidIdPayload, NotAnIdDocument
from agent.idcard.parsers._text import decode_payload, is_ascii_digits, normalize_name, parse_yymmdd
from agent.idcard.parsers.mrz import check_digit
from agent.idcard.schema import IdDocument

HOSTS = {
    "portal.sidiv.registrocivil.cl": "/docstatus",
    "portal.nuevosidiv.registrocivil.cl": "/document-validity",
}
# The registry keys every Chilean person by RUN under type "RUT"; the physical card type (the
# URL's ``type``: CEDULA, CEDULA_EXT for foreigners, ...) is kept apart as ``card_type``.
_CARD_TYPES = {"CEDULA", "CEDULA_EXT"}


def looks_like_cl_qr(data: bytes) -> bool:
    """Cheap signature test used by the dispatcher.

    >>> looks_like_cl_qr(b"https://portal.sidiv.registrocivil.cl/docstatus?RUN=1-9"), looks_like_cl_qr(b"https://x.cl")
    (True, False)
    """
    try:
        parts = urlsplit(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return False
    return parts.scheme in ("http", "https") and (parts.hostname or "") in HOSTS


def _run(raw: str) -> str:
    try:
        compact = rut.compact(raw)
    except Exception:  # stdnum raises plain ValueError-likes on odd input
        compact = ""
    if len(compact) < 2 or not is_ascii_digits(compact[:-1]) or not rut.is_valid(compact):
        raise InvalidIdPayload("RUN check digit is wrong", "el digito verificador del RUN es incorrecto",
                               field="document_number")
    return f"{compact[:-1].lstrip('0')}-{compact[-1]}"


def _mrz_dates(mrz: str, warnings: list[str]) -> tuple[str | None, str | None]:
    """Birth and expiry from the QR's short MRZ, only when their check digits hold."""
    if len(mrz) != 24 or check_digit(mrz[10:16]) != mrz[16] or check_digit(mrz[17:23]) != mrz[23]:
        warnings.append("mrz_dates_unreadable")
        return None, None
    try:
        return (parse_yymmdd(mrz[10:16], "birth_date", future=False),
                parse_yymmdd(mrz[17:23], "expiry", future=True))
    except InvalidIdPayload:
        warnings.append("mrz_dates_unreadable")
        return None, None


def _serial(raw: str) -> str | None:
    """The card's serial (9 digits, or a letter and digits on 2025 cards); None when it is junk."""
    serial = raw.strip().upper()
    return serial if 6 <= len(serial) <= 12 and serial.isascii() and serial.isalnum() else None


def parse_cl_qr(data: bytes) -> IdDocument:
    """Parse the QR URL of a Chilean cedula (see the module docstring)."""
    if not looks_like_cl_qr(data):
        raise NotAnIdDocument()
    parts = urlsplit(data.decode("ascii").strip())
    if parts.path.rstrip("/") != HOSTS[parts.hostname or ""]:
        raise NotAnIdDocument()
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if "RUN" not in query:
        raise InvalidIdPayload("the URL has no RUN", "la URL no tiene RUN", field="document_number")
    number = _run(query["RUN"])
    card_type = query.get("type", "CEDULA").strip().upper()
    warnings = ["names_not_in_barcode"]
    if card_type not in _CARD_TYPES:
        warnings.append("unknown_card_type")
        card_type = "CEDULA"
    mrz = query.get("mrz", "").upper()
    try:
        birth, expiry = _mrz_dates(mrz, warnings)
    except InvalidIdPayload:  # a character outside the MRZ alphabet
        birth, expiry = None, None
        warnings.append("mrz_dates_unreadable")
    return IdDocument(
        country="CL", document_type="RUT", document_number=number,
        given_names=None, surnames=None, first_name=None, second_name=None,
        first_surname=None, second_surname=None, sex=None,
        birth_date=birth, blood_type=None, expiry=expiry, warnings=tuple(warnings),
        card_type=card_type, card_serial=_serial(query.get("serial", "")),
    )


def looks_like_cl_2002(data: bytes) -> bool:
    """Cheap signature test used by the dispatcher.

    >>> looks_like_cl_2002(b"159887790" + b" " * 40 + b"CHL" + b"0" * 400), looks_like_cl_2002(b"1")
    (True, False)
    """
    return len(data) >= 419 and data[49:52] == b"CHL"


def parse_cl_2002(data: bytes) -> IdDocument:
    """Parse the 2002-era Chilean PDF417 (see the module docstring)."""
    if not looks_like_cl_2002(data):
        raise NotAnIdDocument()
    text = decode_payload(data[:68])
    if len(text) != 68:
        raise InvalidIdPayload("damaged Chilean barcode", "codigo de cedula chilena danado")
    number = _run(text[0:9].strip(" \x00"))
    surname = normalize_name(text[19:49].strip(" \x00"), "first_surname")
    if not surname:
        raise InvalidIdPayload("no surname", "falta el apellido", field="surnames")
    return IdDocument(
        country="CL", document_type="RUT", document_number=number,
        given_names=None, surnames=surname, first_name=None, second_name=None,
        first_surname=surname, second_surname=None, sex=None, birth_date=None, blood_type=None,
        expiry=parse_yymmdd(text[52:58], "expiry", future=True), warnings=("names_not_in_barcode",),
        card_type="CEDULA_2002", card_serial=_serial(text[58:68]),
    )
