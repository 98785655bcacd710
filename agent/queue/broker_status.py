"""The head-office link as the API and the health check see it, updated by the sync thread."""
from __future__ import annotations

import threading
from typing import Any

from agent.clock import now_iso


class BrokerStatus:
    """Thread-safe: the sync thread writes, API threads read."""

    def __init__(self, url: str) -> None:
        self._url = url  # scheme://host:port only: never a credential
        self._lock = threading.Lock()
        self.state = "connecting"  # connecting | connected | disconnected
        self.since: str | None = None
        self.last_error: str | None = None
        self.reconnects = 0

    def set(self, state: str, error: str | None = None) -> None:
        with self._lock:
            if state == "connected" and self.state != "connected" and self.since is not None:
                self.reconnects += 1
            self.state = state
            self.since = now_iso()
            if error is not None:
                self.last_error = error

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"state": self.state, "since": self.since, "last_error": self.last_error, "url": self._url,
                    "reconnects": self.reconnects}

    def health(self) -> dict[str, Any]:
        state = self.snapshot()["state"]
        return {"state": "ok" if state == "connected" else "degraded", "broker": state}
