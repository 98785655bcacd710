"""Wall-clock helpers: UTC timestamps and whether the kernel says the clock is NTP-synchronized.

Events carry ``clock_synced`` so head office knows which station timestamps to trust (a Pi
without an RTC boots in 1970 or at its last shutdown time until NTP answers).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from datetime import datetime, timezone
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

_STA_UNSYNC = 0x0040
_TIME_ERROR = 5


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h> (Linux): we only read ``status``; the tail is padding.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time_sec", ctypes.c_long),
        ("time_usec", ctypes.c_long),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_pad", ctypes.c_int * 11),
    ]


class ClockState:
    """Caches the kernel's sync flag for a few seconds: it is read on every event append."""

    def __init__(self, ttl_s: float = 30.0) -> None:
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._value = False
        self._checked_at = float("-inf")

    def synchronized(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._checked_at > self._ttl:
                self._value = kernel_clock_synchronized()
                self._checked_at = now
            return self._value


def kernel_clock_synchronized() -> bool:
    """True when the kernel's NTP discipline says the clock is synchronized (adjtimex)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        tx = _Timex()
        state = libc.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return False
    return state != _TIME_ERROR and not (tx.status & _STA_UNSYNC)


def check_time_zone(value: str) -> str:
    """An IANA zone name Python knows (programs expire points at local midnight: it must be right).

    >>> check_time_zone("America/Bogota")
    'America/Bogota'
    """
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(check_time_zone)]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def iso(dt: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a Z, sortable as text.

    >>> iso(datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc))
    '2026-01-02T03:04:05.678Z'
    """
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso(utcnow())


CLOCK = ClockState()
