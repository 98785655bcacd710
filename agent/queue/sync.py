"""The sync feature as the rest of the agent sees it: status, "sync now", alerts, downlink.

Works with no MQTT URL at all (offline station): events queue in the outbox and the status
says the broker is disabled, so ``make run`` needs no head office.
"""
from __future__ import annotations

import logging
from typing import Any

from agent.lifecycle import Part
from agent.queue.config import MqttSettings
from agent.queue.downlink import Downlink
from agent.queue.publisher import SyncPublisher
from agent.queue.signed_config import ConfigVerifier
from agent.store import outbox
from agent.store.db import Database

log = logging.getLogger(__name__)


class SyncService(Part):
    def __init__(self, db: Database, settings: MqttSettings, station_id: str,
                 verifier: ConfigVerifier | None = None) -> None:
        self._db = db
        # The verifier decides which configuration documents are trusted (signed_config).
        self.downlink = Downlink(db, verifier)
        self.publisher = SyncPublisher(db, settings, station_id, self.downlink) if settings.url else None

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
        """Record the refusal (outside the rolled-back transaction) and alert head office."""
        self._db.write(outbox.record_refusal)
        log.error("sync queue full (%s): new work is being refused until head office confirms events", reason)
        if self.publisher is not None:
            self.publisher.alert("outbox_full", {"reason": reason})

    def health(self) -> dict[str, Any]:
        if self.publisher is None:
            return {"state": "ok", "broker": "disabled"}
        return self.publisher.health()
