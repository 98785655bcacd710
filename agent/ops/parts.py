"""Finding the running agent's optional parts (sync, cards, fingerprint, idcard) by name.

The station container has been a ``Services`` with an ``extras`` dict and is becoming a typed
``Station`` with attributes; operations code only reads parts, so it accepts either.
"""
from __future__ import annotations

from typing import Any


def part(station: Any, name: str) -> Any:
    """The part called ``name`` (an attribute, or an entry of ``extras``), or ``None``."""
    value = getattr(station, name, None)
    if value is None:
        extras = getattr(station, "extras", None)
        if isinstance(extras, dict):
            value = extras.get(name)
    return value


def publisher(station: Any) -> Any:
    """The MQTT publisher, or ``None`` when no head office is configured."""
    sync = part(station, "sync")
    return getattr(sync, "publisher", None) if sync is not None else None
