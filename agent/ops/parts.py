"""Reading the running station's optional parts without importing ``agent.station`` (which
imports everything): operations code takes the ``Station`` as ``Any`` and reads attributes."""
from __future__ import annotations

from typing import Any


def part(station: Any, name: str) -> Any:
    """The part called ``name`` (``cards``, ``sync``, ``idcard``, ``fingerprint``), or ``None``."""
    return getattr(station, name, None)


def publisher(station: Any) -> Any:
    """The MQTT publisher, or ``None`` when no head office is configured."""
    sync = part(station, "sync")
    return getattr(sync, "publisher", None) if sync is not None else None
