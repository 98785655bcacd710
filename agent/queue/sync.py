"""The sync feature as the rest of the agent sees it: status, "sync now", alerts, downlink.

Works with no MQTT URL at all (offline station): events queue in the outbox and the status
says the broker is disabled, so ``make run`` needs no head office.
"""
from __future__ import annotations

import json
import logging
from typing import Any

from agent.config import Settings
from agent.store import outbox
from agent.queue.downlink import Downlink, DownlinkHandler, enveloped
from agent.queue.publisher import SyncPublisher
from agent.queue.signed_config import ConfigVerifier, load_public_key
from agent.store.db import Database

log = logging.getLogger(__name__)


class SyncService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        key = settings.sync.config_public_key
        self.downlink = Downlink(db, ConfigVerifier(load_public_key(key) if key else None,
                                                    required=settings.sync.require_signed_config))
        self.publisher = (SyncPublisher(db, settings.mqtt, settings.station.id, self.downlink)
                          if settings.mqtt.url else None)

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


def register_downlink(sync: SyncService, extras: dict[str, Any]) -> None:
    """Configuration kinds head office can send, each applied by the feature that owns it."""
    loyalty = extras.get("loyalty")
    if loyalty is not None:
        from agent.loyalty.directory import DirectoryDelta
        from agent.loyalty.models import RuleProgram

        sync.downlink.register(DownlinkHandler("earning_rules", enveloped(RuleProgram), loyalty.set_rule_program))

        def parse_delta(raw: bytes) -> tuple[int, Any]:
            delta = DirectoryDelta.model_validate_json(raw)
            return delta.seq, delta

        # Directory deltas carry accounts, cards, tiers, balance snapshots, customer messages
        # and the reward catalog; each has its own sequence number.
        sync.downlink.register(DownlinkHandler("directory", parse_delta, loyalty.apply_directory_delta))
    cards = extras.get("cards")
    if cards is not None:
        def parse_bundle(raw: bytes) -> tuple[int, bytes]:
            version = json.loads(raw)["payload"]["version"]
            if not isinstance(version, int):
                raise ValueError("PIN bundle version must be an integer")
            return version, raw

        sync.downlink.register(DownlinkHandler("pin_bundle", parse_bundle, cards.pins.import_bundle,
                                           signed=False))
