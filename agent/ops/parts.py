"""Typed access to the running station's parts for operations code.

``Station`` is imported for annotations only: ``agent.station`` imports operations (to attach the
status message), so importing it at run time would be a cycle.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.queue.publisher import SyncPublisher
    from agent.station import Station


def publisher(station: Station) -> SyncPublisher | None:
    """The MQTT publisher, or ``None`` when no head office is configured."""
    return station.sync.publisher
