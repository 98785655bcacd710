"""Time-ordered identifiers (UUIDv7, RFC 9562).

Python 3.11 has no ``uuid.uuid7``; the layout is simple enough to build here: 48-bit Unix
milliseconds, version 7, 74 random bits. Time order keeps B-tree inserts at the right edge
of the index, which matters with a million customers on an SD card.
"""
from __future__ import annotations

import os
import time
import uuid


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    """Return a new UUIDv7.

    >>> u = uuid7(0x0123456789AB)
    >>> u.version, str(u)[:13]
    (7, '01234567-89ab')
    """
    ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def new_id() -> str:
    return str(uuid7())
