"""Pure parsers: raw barcode/MRZ bytes -> :class:`agent.idcard.schema.IdDocument`.

``parse_any`` (in :mod:`agent.idcard.parsers.dispatch`) picks the right one from the symbology.
"""
from agent.idcard.parsers.dispatch import parse_any

__all__ = ["parse_any"]
