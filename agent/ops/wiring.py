"""Connect operations to a built station: the MQTT status message carries the health assessment."""
from __future__ import annotations

from typing import Any

from agent.ops.parts import publisher


def attach(station: Any) -> None:
    """Called once the station's parts exist (before they start)."""
    pub = publisher(station)
    if pub is not None:
        from agent.ops.health import assess

        pub.status_extra = lambda: assess(station).status_message_extra()
