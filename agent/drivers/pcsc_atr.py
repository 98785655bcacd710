"""Card type from a PC/SC ATR (pure; no pyscard import).

Contactless readers that follow PC/SC part 3 (ACR122U and most CCID PICC readers) synthesise an
ATR for storage cards: ``3B 8F 80 01 80 4F 0C A0 00 00 03 06 SS NN NN 00 00 00 00 TCK`` where
SS is the standard (03 = ISO 14443 A part 3) and NN NN the card name (00 01 Classic 1K, 00 02
Classic 4K, 00 03 Ultralight/NTAG, 00 26 Mini, 00 3A Ultralight C). ISO 14443-4 cards (DESFire,
bank cards, phones) get ``3B 8n 80 01`` + historical bytes. Anything else with a valid initial
byte (3B direct / 3F inverse convention) is a contact card.

>>> card_type_from_atr(bytes.fromhex("3B8F8001804F0CA000000306030001000000006A"))
<CardType.MIFARE_CLASSIC_1K: 'mifare_classic_1k'>
>>> card_type_from_atr(bytes.fromhex("3B8F8001804F0CA0000003060300030000000068"))
<CardType.ULTRALIGHT: 'ultralight'>
>>> card_type_from_atr(bytes.fromhex("3B8180018080"))
<CardType.ISO14443_4: 'iso14443_4'>
>>> card_type_from_atr(bytes.fromhex("3BBE9600004103000000000000000000029000"))
<CardType.CONTACT: 'contact'>
>>> card_type_from_atr(b"")
<CardType.UNKNOWN: 'unknown'>
>>> card_type_from_atr(bytes.fromhex("3B8F8001804F0CA0000003060300010000000000"))  # bad TCK
<CardType.UNKNOWN: 'unknown'>
"""
from __future__ import annotations

from enum import StrEnum

_STORAGE_PREFIX = bytes.fromhex("3B8F8001804F0CA000000306")


class CardType(StrEnum):
    MIFARE_CLASSIC_1K = "mifare_classic_1k"
    MIFARE_CLASSIC_4K = "mifare_classic_4k"
    MIFARE_MINI = "mifare_mini"
    ULTRALIGHT = "ultralight"  # includes NTAG21x: same READ command, 4-byte pages
    ISO14443_4 = "iso14443_4"
    CONTACT = "contact"
    UNKNOWN = "unknown"

    @property
    def is_classic(self) -> bool:
        return self in (CardType.MIFARE_CLASSIC_1K, CardType.MIFARE_CLASSIC_4K, CardType.MIFARE_MINI)


_STORAGE_NAMES: dict[bytes, CardType] = {
    b"\x00\x01": CardType.MIFARE_CLASSIC_1K,
    b"\x00\x02": CardType.MIFARE_CLASSIC_4K,
    b"\x00\x03": CardType.ULTRALIGHT,
    b"\x00\x26": CardType.MIFARE_MINI,
    b"\x00\x3a": CardType.ULTRALIGHT,  # Ultralight C
}


def tck_ok(atr: bytes) -> bool:
    """XOR of T0..TCK must be zero (TCK is present in every ATR that offers T=1).

    >>> tck_ok(bytes.fromhex("3B8180018080"))
    True
    """
    check = 0
    for b in atr[1:]:
        check ^= b
    return check == 0


def card_type_from_atr(atr: bytes) -> CardType:
    if len(atr) < 2 or atr[0] not in (0x3B, 0x3F):
        return CardType.UNKNOWN
    if atr.startswith(_STORAGE_PREFIX):
        if len(atr) != 20 or not tck_ok(atr):
            return CardType.UNKNOWN
        return _STORAGE_NAMES.get(atr[13:15], CardType.UNKNOWN)
    # PC/SC part 3 for ISO 14443-4: T0 = 8n, TD1 = 80, TD2 = 01 (T=1), then historical bytes, TCK.
    if len(atr) >= 5 and atr[0] == 0x3B and atr[1] & 0xF0 == 0x80 and atr[2:4] == b"\x80\x01":
        return CardType.ISO14443_4 if tck_ok(atr) else CardType.UNKNOWN
    return CardType.CONTACT
