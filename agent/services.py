"""The running agent's parts, built once at start-up and handed to the API and the CLI.

An explicit, typed container rather than attributes scattered on the app object: every
router sees exactly what exists, and tests build one over a temporary data directory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config import Settings
from agent.customers.service import CustomerService
from agent.errors import AgentError
from agent.store.outbox import configure_budget
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

    def maintenance(self) -> None:
        """Periodic housekeeping (the runner calls it): retention purges of each feature."""
        from datetime import timedelta

        from agent.api.idempotency import prune

        prune(self.db, timedelta(hours=self.settings.api.idempotency_retention_hours))
        self.call_each("maintenance")

    def start(self) -> None:
        self.call_each("start")

    def call_each(self, method: str, *, reverse: bool = False) -> None:
        """Call ``method`` on every part that defines it. Looked up on the type, so a lazy part
        (which forwards unknown attributes to the object it builds) is not built just for this."""
        parts = list(self.extras.values())
        for part in reversed(parts) if reverse else parts:
            fn = getattr(type(part), method, None)
            if callable(fn):
                fn(part)

    def close(self) -> None:
        self.call_each("stop", reverse=True)
        self.db.close()


class NoStationData(AgentError):
    """The data directory holds no agent database: almost always a mistyped ``--data-dir``."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(
            "no_station_data",
            f"no hay datos del agente en {data_dir} (agent.db no existe); revise --data-dir",
            f"no agent data in {data_dir} (agent.db does not exist); check --data-dir",
            status=404,
        )


def require_station(settings: Settings) -> None:
    """Raise ``NoStationData`` unless the station's database exists. Commands that read or act on
    an existing station call this first, so a typo in ``--data-dir`` is an error that creates
    nothing, instead of an empty station that answers "0 customers"."""
    if not settings.storage.database_path.is_file():
        raise NoStationData(settings.storage.data_dir)


def open_database(settings: Settings, *, create: bool = True) -> Database:
    """Open (and migrate) the station's database; ``create=False`` refuses to start a new one."""
    if not create:
        require_station(settings)
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
    from agent.cards.wiring import CardStation

    cards = CardStation(settings.cards, services.db, station_id=settings.station.id, key_dir=settings.storage.key_dir)
    services.extras["cards"] = cards
    services.extras["swipe_sessions"] = cards.sessions
    from agent.loyalty.service import LoyaltyService

    services.extras["loyalty"] = LoyaltyService(services.db, station_id=settings.station.id, sessions=cards.sessions,
                                                settings=settings.loyalty, timezone=settings.station.timezone)
    from agent.queue.sync import SyncService, register_downlink

    sync = SyncService(services.db, settings)
    register_downlink(sync, services.extras)
    services.extras["sync"] = sync
    if settings.idcard.enabled or settings.devices.simulated:
        from agent.idcard.wiring import LazyIdCardService

        services.extras["idcard"] = LazyIdCardService(settings.idcard, settings.storage.data_dir,
                                                         settings.storage.key_dir, simulated=settings.devices.simulated)
    if settings.fingerprint.enabled or settings.devices.simulated:
        from agent.biometric.wiring import build_biometric_service

        services.extras["fingerprint"] = build_biometric_service(
            settings.fingerprint, services.db, services.customers, settings.storage.key_dir,
            simulated=settings.devices.simulated)
