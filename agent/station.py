"""The running station: every part, typed, built in one place (``build_station``).

This is the composition root. Features do not find each other: what one needs from another
(the swipe sessions loyalty checks, the downlink kinds head office may send, the customer
hook that deletes fingerprints) is handed over here. Optional devices are ``None`` when they
are off, so a route can answer "not enabled" instead of guessing. The API, the runner and the
CLI receive a ``Station`` (or just its database); nothing below this module imports it.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.store import datadir
from agent.biometric import templates as biometric_schema
from agent.cards import pins as cards_schema
from agent.cards.sessions import SwipeSessions
from agent.cards.wiring import CardStation
from agent.config import Settings
from agent.customers import enrollment as enrollment_schema
from agent.idcard import photos as idcard_photos_schema
from agent.customers.service import CustomerService
from agent.errors import AgentError
from agent.lifecycle import Lifecycle
from agent.loyalty import schema as loyalty_schema
from agent.queue.downlink import DownlinkHandler, enveloped
from agent.queue.signed_config import config_verifier
from agent.queue.sync import SyncService
from agent.store import guard, schema_core
from agent.store.backup import pre_migration_backup
from agent.store.db import Database
from agent.store.idempotency import prune as prune_idempotency_keys
from agent.store.migrations import check_unique
from agent.store.outbox import budget_of, configure_budget
from agent.tokens import TokenStore

if TYPE_CHECKING:  # device features are imported only when configured: an idle agent stays small
    from agent.biometric.service import BiometricService
    from agent.idcard.scanners import IdScanners
    from agent.idcard.wiring import LazyIdCardService
    from agent.loyalty.demo import DemoProgram
    from agent.loyalty.service import LoyaltyService
    from agent.printing.escpos_printer import ReceiptPrinter

log = logging.getLogger(__name__)

# Every feature's schema, in the order they apply. A migration's position never changes once
# released; new ones are appended to their feature's list.
MIGRATIONS: tuple[tuple[str, str], ...] = (
    *schema_core.MIGRATIONS,
    *biometric_schema.MIGRATIONS,
    *cards_schema.MIGRATIONS,
    *loyalty_schema.MIGRATIONS,
    *enrollment_schema.MIGRATIONS,
    *idcard_photos_schema.MIGRATIONS,
)


@dataclass
class Station:
    settings: Settings
    db: Database
    tokens: TokenStore
    customers: CustomerService
    sync: SyncService
    # Attendant PINs (always: head office sends PIN bundles) and the card readers, if any.
    cards: CardStation
    # What the swipe routes serve: None when no card reader is configured (503 card_readers_disabled).
    swipe_sessions: SwipeSessions | None = None
    loyalty: LoyaltyService | None = None  # None when loyalty.enabled is false (503 loyalty_not_configured)
    idcard: LazyIdCardService | None = None  # None unless idcard.enabled or devices.simulated
    fingerprint: BiometricService | None = None  # None unless fingerprint.enabled or devices.simulated
    # Simulated mode only: installs a demo earning program and catalog where the station has none.
    demo_program: DemoProgram | None = None
    printer: ReceiptPrinter | None = None  # None unless [printer] is configured (503 printer_not_configured)
    # Hand-held ID scanners (serial MRZ reader, wedge PDF417/QR): None unless [idcard.scanners] names one.
    idcard_scanners: IdScanners | None = None

    def parts(self) -> Iterator[tuple[str, Lifecycle]]:
        """The running parts that exist, in start order, with their name in ``/v1/health``."""
        candidates: tuple[tuple[str, Lifecycle | None], ...] = (
            ("cards", self.cards), ("sync", self.sync), ("idcard", self.idcard), ("fingerprint", self.fingerprint),
            ("demo_program", self.demo_program), ("printer", self.printer),
            ("idcard_scanners", self.idcard_scanners))
        for name, part in candidates:
            if part is not None:
                yield name, part

    def start(self) -> None:
        for _, part in self.parts():
            part.start()

    def maintenance(self) -> None:
        """Periodic housekeeping (the runner calls it): retention purges of each part."""
        prune_idempotency_keys(self.db, timedelta(hours=self.settings.api.idempotency_retention_hours))
        for _, part in self.parts():
            part.maintenance()

    def health(self) -> dict[str, dict[str, Any]]:
        return {name: part.health() for name, part in self.parts()}

    def close(self) -> None:
        for _, part in reversed(list(self.parts())):
            part.stop()
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


def open_database(settings: Settings, *, create: bool = True, verify: bool = False) -> Database:
    """Open (and migrate) the station's database; ``create=False`` refuses to start a new one,
    ``verify=True`` (the running agent) checks its integrity first.

    The folder is made 0700 and the database files 0600 whatever the umask; a folder or file this
    user may not use is a clear error (agent.store.guard); a database migrated by a newer build is
    refused (``UnknownMigrations``); an existing database is backed up before any migration runs.
    """
    database = settings.storage.database_path
    datadir.check_access(settings.storage.data_dir)
    if not create:
        require_station(settings)
    guard.preflight(database)  # another owner, read-only, not a database: said before anything is created
    datadir.prepare(settings.storage.data_dir)
    datadir.secure_database_files(database)
    mqtt = settings.mqtt
    max_age = mqtt.outbox_max_age_days * 86400 if mqtt.outbox_max_age_days is not None else None
    wanted = (mqtt.outbox_max_bytes, max_age, settings.storage.min_free_bytes)
    try:
        db = Database(database, check_unique(MIGRATIONS), verify=verify, writer_version=__version__,
                      before_migrating=lambda pending: pre_migration_backup(database, pending))
    except (sqlite3.Error, PermissionError) as exc:
        raise datadir.translate_sqlite_error(exc, database) or exc
    try:
        # Only written when it changed: an unchanged start needs no write (it works on a full disk).
        if db.read(budget_of) != wanted:
            db.write(lambda c: configure_budget(c, *wanted))
    except BaseException:
        db.close()
        raise
    return db


def customer_service(db: Database, settings: Settings) -> CustomerService:
    return CustomerService(db, settings.enrollment, country=settings.station.country,
                           timezone=settings.station.timezone)


def build_station(settings: Settings, *, verify: bool = False) -> Station:
    """Open the store and build every configured part (nothing starts until ``start()``);
    ``verify=True`` checks the store's integrity first (the running agent)."""
    db = open_database(settings, verify=verify)
    try:
        station = assemble_station(settings, db)
        _add_optional_parts(station)
    except BaseException:
        db.close()
        raise
    _register_downlink(station)
    from agent.ops.wiring import attach

    attach(station)  # health, devices and disk in the retained MQTT status message
    return station


def assemble_station(settings: Settings, db: Database, **parts: Any) -> Station:
    """The parts every station has, over an open database; ``parts`` sets optional ones (tests
    and benchmarks hand in a loyalty service of their own this way)."""
    simulated = settings.devices.simulated
    cards = CardStation(settings.cards, db, station_id=settings.station.id, key_dir=settings.storage.key_dir,
                        simulated=simulated, demo=_demo(settings))
    core: dict[str, Any] = {
        "settings": settings, "db": db, "tokens": TokenStore(db), "customers": customer_service(db, settings),
        "sync": SyncService(db, settings.mqtt, settings.station.id, config_verifier(settings.sync)), "cards": cards,
        # Simulated mode has a simulated card reader (POST /v1/simulated/swipes).
        "swipe_sessions": cards.sessions if cards.readers or simulated else None}
    station = Station(**{**core, **parts})
    # Every refused write is counted and reported, whichever caller hit the full queue.
    db.on_outbox_full = station.sync.on_outbox_full
    return station


def _demo(settings: Settings) -> bool:
    """A demo station (``make run``): simulated devices and no head office. It gets the demo
    attendants, program and catalog; nothing of them reaches a head office, and a simulated
    station that has one gets its PINs, rules and catalog from it like any other."""
    return settings.devices.simulated and not settings.mqtt.url


def _add_optional_parts(station: Station) -> None:
    settings = station.settings
    simulated = settings.devices.simulated
    try:
        if settings.loyalty.enabled:
            from agent.loyalty.service import LoyaltyService

            station.loyalty = LoyaltyService(station.db, station_id=settings.station.id, sessions=station.cards.sessions,
                                             settings=settings.loyalty, timezone=settings.station.timezone)
            # A card the program would refuse (unknown, blocked) is refused at the swipe: no PIN prompt.
            station.cards.sessions.card_gate = station.loyalty.card_refusal
            if _demo(settings):
                from agent.loyalty.demo import DemoProgram

                station.demo_program = DemoProgram(station.loyalty)
        if settings.printer.kind != "none":
            from agent.printing.escpos_printer import ReceiptPrinter

            station.printer = ReceiptPrinter(settings.printer)
        if settings.idcard.enabled or simulated:
            from agent.idcard.wiring import LazyIdCardService

            station.idcard = LazyIdCardService(settings.idcard, settings.storage.data_dir, settings.storage.key_dir,
                                               simulated=simulated, db=station.db)
        scanners = settings.idcard.scanners
        if scanners.mrz_serial_port or scanners.wedge_device:
            from agent.idcard.scanners import IdScanners

            station.idcard_scanners = IdScanners(scanners, station.cards.hub)
        if settings.fingerprint.enabled or simulated:
            from agent.biometric.wiring import build_biometric_service, consent_withdrawal_hook

            station.fingerprint = build_biometric_service(settings.fingerprint, station.db, station.customers,
                                                          settings.storage.key_dir, simulated=simulated)
            station.customers.change_hooks.append(consent_withdrawal_hook(station.fingerprint.templates))
    except BaseException:
        for _, part in station.parts():
            part.stop()  # a sensor built before the failure has a thread running
        raise


def _register_downlink(station: Station) -> None:
    """Configuration kinds head office can send, each applied by the feature that owns it."""
    downlink = station.sync.downlink
    loyalty = station.loyalty
    if loyalty is not None:
        from agent.loyalty.directory import DirectoryDelta
        from agent.loyalty.models import RuleProgram

        def parse_delta(raw: bytes) -> tuple[int, Any]:
            delta = DirectoryDelta.model_validate_json(raw)
            return delta.seq, delta

        downlink.register(DownlinkHandler("earning_rules", enveloped(RuleProgram), loyalty.set_rule_program))
        # Directory deltas carry accounts, cards, tiers, balance snapshots, customer messages
        # and the reward catalog; each has its own sequence number.
        downlink.register(DownlinkHandler("directory", parse_delta, loyalty.apply_directory_delta))

    def parse_bundle(raw: bytes) -> tuple[int, bytes]:
        version = json.loads(raw)["payload"]["version"]
        if not isinstance(version, int):
            raise ValueError("PIN bundle version must be an integer")
        return version, raw

    # The PIN bundle carries its own signature (cards.pins.bundle_public_key), not the config wrapper.
    downlink.register(DownlinkHandler("pin_bundle", parse_bundle, station.cards.pins.import_bundle, signed=False))
