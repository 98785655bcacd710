"""What the station does with each of its running parts: start, stop, report health, tidy up.

``Station`` (agent/station.py) calls these on the parts that exist, in a fixed order; a part
implements all four (``Part`` gives no-op defaults), so nothing is found by duck typing.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Lifecycle(Protocol):
    def start(self) -> None:
        """Begin background work (threads, devices). Called once, when the agent starts serving."""

    def stop(self) -> None:
        """End it; called once, in reverse start order, before the database closes."""

    def health(self) -> dict[str, Any]:
        """A JSON object for ``GET /v1/health``; ``"state": "error"`` makes the agent degraded."""

    def maintenance(self) -> None:
        """Periodic housekeeping (retention purges); runs in a worker thread every few minutes."""


class Part:
    """Defaults for a part that needs only some of the four: nothing to start, stop or purge,
    and a plain "ok"."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def health(self) -> dict[str, Any]:
        return {"state": "ok"}

    def maintenance(self) -> None:
        pass
