"""The running agent's parts, built once at start-up and handed to the API and the CLI.

An explicit, typed container rather than attributes scattered on the app object: every
router sees exactly what exists, and tests build one over a temporary data directory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.config import Settings
from agent.customers.service import CustomerService
from agent.queue.outbox import configure_budget
from agent.store.db import Database
from agent.store.migrations import all_migrations
from agent.tokens import TokenStore


@dataclass
class Services:
    settings: Settings
    db: Database
    customers: CustomerService
    tokens: TokenStore
    # Optional parts registered by later features (sync, devices): name -> object.
    extras: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        for part in reversed(list(self.extras.values())):
            stop = getattr(part, "stop", None)
            if callable(stop):
                stop()
        self.db.close()


def open_database(settings: Settings) -> Database:
    settings.storage.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.storage.database_path, all_migrations())
    mqtt = settings.mqtt
    max_age = mqtt.outbox_max_age_days * 86400 if mqtt.outbox_max_age_days is not None else None
    db.write(lambda c: configure_budget(c, mqtt.outbox_max_bytes, max_age))
    return db


def build_services(settings: Settings) -> Services:
    db = open_database(settings)
    services = Services(settings=settings, db=db, customers=CustomerService(db, settings), tokens=TokenStore(db))
    try:
        _add_devices(services)
    except BaseException:
        services.close()
        raise
    return services


def _add_devices(services: Services) -> None:
    """Device features, imported only when configured so an idle agent stays small."""
    settings = services.settings
    if settings.fingerprint.enabled or settings.devices.simulated:
        from agent.biometric.wiring import build_biometric_service

        services.extras["fingerprint"] = build_biometric_service(
            settings.fingerprint, services.db, services.customers, settings.storage.key_dir,
            simulated=settings.devices.simulated)
