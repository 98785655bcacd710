"""The sync feature as the rest of the agent sees it: status, "sync now", alerts, downlink.

Works with no MQTT URL at all (offline station): events queue in the outbox and the status
says the broker is disabled, so ``make run`` needs no head office.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from agent.lifecycle import Part
from agent.queue.config import MqttSettings
from agent.queue.downlink import Downlink
from agent.queue.publisher import SyncPublisher
from agent.queue.signed_config import ConfigVerifier
from agent.store import outbox
from agent.store.db import Database

log = logging.getLogger(__name__)
ALERT_EVERY_S = 60.0


class SyncService(Part):
    def __init__(self, db: Database, settings: MqttSettings, station_id: str,
                 verifier: ConfigVerifier | None = None) -> None:
        self._db = db
        # The verifier decides which configuration documents are trusted (signed_config).
        self.downlink = Downlink(db, verifier)
        self.publisher = SyncPublisher(db, settings, station_id, self.downlink) if settings.url else None
        self._alert_lock = threading.Lock()
        self._next_alert_at: dict[str, float] = {}
        self._refused_since_alert: dict[str, int] = {}

    def start(self) -> None:
        if self.publisher is not None:
            self.publisher.start()

    def stop(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()

    def status(self) -> dict[str, Any]:
        stats = self._db.read(outbox.stats)
        broker = self.publisher.broker_state() if self.publisher else {"state": "disabled"}
        return {**stats, "broker": broker, "downlink": self.downlink.state()}

    def request_sync(self) -> bool:
        if self.publisher is None:
            return False
        self.publisher.request_sync()
        return True

    def on_outbox_full(self, reason: str) -> None:
        """Record the refusal (outside the rolled-back transaction) and alert head office.

        Coalesced: one log line and one alert per ``ALERT_EVERY_S`` and reason, with the number
        of refusals since the last one (a burst of 300 refused requests is one alert, not 300)."""
        self._db.write(outbox.record_refusal)
        now = time.monotonic()
        with self._alert_lock:
            self._refused_since_alert[reason] = self._refused_since_alert.get(reason, 0) + 1
            if now < self._next_alert_at.get(reason, 0.0):
                return
            self._next_alert_at[reason] = now + ALERT_EVERY_S
            refusals = self._refused_since_alert.pop(reason)
        log.error("cola de sincronización llena (%s): se rechaza trabajo nuevo hasta que la oficina central "
                      "confirme eventos [outbox_full]", reason)
        if self.publisher is not None:
            self.publisher.alert("outbox_full", {"reason": reason, "refusals": refusals})

    def health(self) -> dict[str, Any]:
        if self.publisher is None:
            return {"state": "ok", "broker": "disabled"}
        return self.publisher.health()
