"""The last line of defence against personal data and forged lines in the journal.

Code never logs names or full document numbers on purpose; this masks what slips through:
document numbers in any spelling (a RUT as ``12.345.678-K``, a CUIT as ``20-12345678-6``, a
Colombian cédula as ``1.020.304.050``, passports), phone numbers, card numbers and e-mail
addresses. It keeps what a technician needs: IP addresses and ports, sequence numbers and
ranges, byte counts and durations, dates and times. And it escapes control characters, so a
value with a newline cannot start a journal line of its own (``\\n<0>`` would be an emergency).

The rules, in order, for each run of digits (with ``.``, ``-``, spaces, ``/`` or brackets inside):
1. an e-mail address is masked whole;
2. identifiers are kept: UUIDs, hex strings of 16+ characters with 4+ letters;
3. an IPv4 address (optionally ``:port``) is kept, unless it is shaped like a dotted 10-digit
   cédula (``1.234.567.890``: one digit, then groups of three) and not a valid address;
4. a number right after ``seq``, ``port``, ``pid``, ``version``... (``seq 10000-10060``) or right
   before a unit (``1048576 bytes``, ``350 ms``) is kept, as are dates and times;
5. otherwise a run with 7 or more digits is masked to ``***`` and its last 3 characters; after a
   word that announces a document, phone or card (``rut``, ``dni``, ``tel``...), 2 digits suffice;
   digits glued to letters (``RUT12345678``, ``12345678A``) are masked with their word.
"""
from __future__ import annotations

import re
import unicodedata

_EMAIL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+"
_DATETIME = (r"(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
             r"|\d{2}:\d{2}:\d{2}(?:[.,]\d+)?")
_IPV4 = r"(?<![\w.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d{1,5})?(?![\w.]*\d)"
# Passports and foreigner ids: 1-3 letters then 6+ digits, as one word.
_LETTERS_DIGITS = r"(?<![\w@])[A-Za-z]{1,3}\d{6,12}(?![\w@]|[.\-]\d)"
# A number as people write documents, phones and cards: digits with separators, an optional
# leading + or (, an optional trailing check letter K.
# Possessive: a number glued to a letter must not match as its shorter prefix ("56100" of
# "56100-1000A"); it is then masked whole by the word rule below.
_NUMBER = r"(?<![\w@.])[+(]?\d(?:[.\- /()]{0,2}\d)*+(?:-?[kK])?(?![\w@]|\.\d)"
_UUID = r"(?<![\w-])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![\w-])"
# Digits glued to letters ("RUT12345678", "12345678A"): masked, unless the word is an identifier.
_WORD = r"(?<![\w.])\w*\d(?:[.\-]?\d){6,}\w*"
# ASCII word boundaries: a number glued to "¾" or "À" is still a number to mask.
_TOKEN = re.compile(f"(?P<email>{_EMAIL})|(?P<uuid>{_UUID})|(?P<dt>{_DATETIME})|(?P<ip>{_IPV4})"
                    f"|(?P<ld>{_LETTERS_DIGITS})|(?P<num>{_NUMBER})|(?P<word>{_WORD})", re.ASCII)
_HEX = re.compile(r"[0-9a-fA-F]{16,}", re.ASCII)

_KEEP_BEFORE = re.compile(
    r"(?:\b(?:seq|seqs|sequence|secuencia|from_seq|to_seq|offset|pid|port|puerto|version|versi[oó]n|mid|rowid"
    r"|bytes|size|count|total|took|after|retry|attempt|intento|frames?)|\w+_(?:seq|bytes|count|size|ms|s|version))"
    r"\s*[=:#]?\s*$", re.IGNORECASE)
_KEEP_AFTER = re.compile(
    r"^\s*(?:bytes?|B|KiB|MiB|GiB|kB|MB|GB|ms|s|µs|us|min|h|events?|eventos?|rows?|filas?|frames?|fps|px|%)(?![\w])")
_ANNOUNCES_PERSONAL = re.compile(
    r"(?:\b(?:rut|run|cuit|cuil|dni|nit|ruc|c[eé]dula|cc|ci|ce|documento|document|doc|pasaporte|passport"
    r"|tel|tel[eé]fono|phone|celular|m[oó]vil|mobile|whatsapp|tarjeta|card|pan))\s*(?:n[°º.]?|nro\.?|no\.?)?\s*[=:#]?\s*$",
    re.IGNORECASE)
_PLAIN_RANGE = re.compile(r"^(\d+)(?:\s*(?:-|\.\.)\s*(\d+))?$")


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _is_ip(text: str) -> bool:
    address = text.split(":")[0]
    groups = address.split(".")
    if any(len(g) > 1 and g.startswith("0") or int(g) > 255 for g in groups):
        return False
    # 1.234.567.890 is how a 10-digit Colombian cédula is written; 10.x.x.x addresses have two
    # leading digits, so only this shape is ambiguous, and only when every group fits an octet.
    return not (len(groups[0]) == 1 and all(len(g) == 3 for g in groups[1:]) and ":" not in text)


def _mask(value: str) -> str:
    tail = "".join(ch for ch in value if ch.isdigit() or ch in "kK")[-3:]
    return f"***{tail}"


def _replace(match: re.Match[str]) -> str:
    text = match.group(0)
    kind = match.lastgroup
    if kind == "email":
        return "***@***"
    if kind in ("dt", "uuid"):
        return text
    if kind == "word":
        # Hex ids (capture ids, hashes) are not personal; anything else with 7 digits is. A card
        # number glued to 4+ of the letters a-f looks like one: a limit of any text-only rule.
        hex_letters = sum(ch in "abcdefABCDEF" for ch in text)
        return text if _HEX.fullmatch(text) and hex_letters >= 4 else _mask(text)
    before = match.string[max(0, match.start() - 40):match.start()]
    if kind == "ip":
        return text if _is_ip(text) else _mask(text)
    digits = _digits(text)
    if kind == "ld":
        return _mask(text) if len(digits) >= 6 else text
    personal = _ANNOUNCES_PERSONAL.search(before) is not None
    if len(digits) < (2 if personal else 7):
        return text
    if not personal:
        plain = _PLAIN_RANGE.match(text.strip())
        in_order = plain is not None and (plain.group(2) is None or int(plain.group(2)) >= int(plain.group(1)))
        if in_order and (_KEEP_BEFORE.search(before) or _KEEP_AFTER.match(match.string[match.end():])):
            return text
    return _mask(text)


def mask_personal(text: str) -> str:
    """Mask personal numbers and e-mails; keep addresses, ports, sequences and sizes.

    >>> mask_personal("lookup 12.345.678-K by ana.perez@mail.cl from +56 9 8765 4321")
    'lookup ***78K by ***@*** from ***321'
    >>> mask_personal("broker 127.100.100.100:8883 replay seq 10000-10060, 1048576 bytes in 350 ms")
    'broker 127.100.100.100:8883 replay seq 10000-10060, 1048576 bytes in 350 ms'
    >>> mask_personal("CUIT 20-12345678-6, cédula 1.020.304.050, tarjeta 6035 1234 5678 9012")
    'CUIT ***786, cédula ***050, tarjeta ***012'
    """
    return _TOKEN.sub(_replace, text)


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    r"""Escape control and format characters so one logged value stays on one journal line.

    >>> escape_controls("P-01\n<0>forged\x1b[31m\u202e")
    'P-01\\n<0>forged\\x1b[31m\\u202e'
    """
    out: list[str] = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            out.append(ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
