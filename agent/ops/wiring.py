"""Connect operations to a built station: the MQTT status message carries the health assessment."""
from __future__ import annotations

from typing import TYPE_CHECKING

from agent.ops.parts import publisher

if TYPE_CHECKING:
    from agent.station import Station


def attach(station: Station) -> None:
    """Called once the station's parts exist (before they start)."""
    pub = publisher(station)
    if pub is not None:
        from agent.ops.health import assess

        pub.status_extra = lambda: assess(station).status_message_extra()
