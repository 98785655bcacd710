"""Build the card side of the running agent: PINs, swipe sessions and the readers feeding them."""
from __future__ import annotations

import logging
from typing import Any

from agent.cards.config import CardsSettings
from agent.cards.events import EventHub
from agent.cards.pin_bundle import load_public_key
from agent.cards.pins import AttendantPins, load_pepper
from agent.cards.sessions import SwipeSessions
from agent.errors import AgentError
from agent.lifecycle import Part
from agent.store.db import Database

log = logging.getLogger(__name__)


class CardStation(Part):
    """Owns the readers; ``sessions`` is what the API and sales use."""

    def __init__(self, cards: CardsSettings, db: Database, *, station_id: str, key_dir: Any) -> None:
        try:
            pepper: bytes | None = load_pepper(key_dir)
        except AgentError:
            # Until head office provisions the station key, every PIN is refused (never accepted).
            pepper = None
        public_key = load_public_key(cards.pins.bundle_public_key) if cards.pins.bundle_public_key else None
        self.pins = AttendantPins(db, station_id=station_id, settings=cards.pins, pepper=pepper,
                                  public_key=public_key)
        self.hub = EventHub()
        self.sessions = SwipeSessions(self.pins, self.hub, session_ttl_s=cards.session_ttl_s,
                                      authorized_ttl_s=cards.authorized_ttl_s)
        self.readers: list[Any] = []
        self.started: list[Any] = []
        self.failed: dict[str, str] = {}
        if cards.pcsc.enabled:
            from agent.drivers.pcsc_reader import MifareKey, PcscCardReader, PcscReaderConfig

            keys = tuple(MifareKey(bytes.fromhex(k.split(":")[-1]), "B" if k.startswith("B:") else "A")
                         for k in cards.pcsc.classic_keys)
            config = PcscReaderConfig(reader_pattern=cards.pcsc.reader_pattern, ntag_pages=cards.pcsc.ntag_pages,
                                      classic_blocks=tuple(cards.pcsc.classic_blocks), classic_keys=keys)
            self.readers.append(PcscCardReader(self.sessions.on_card_read, config, on_error=self.sessions.on_card_error))
        if cards.magstripe.evdev_device:
            from agent.drivers.magstripe_evdev import EvdevMagstripeReader

            self.readers.append(EvdevMagstripeReader(cards.magstripe.evdev_device, self.sessions.on_stripe,
                                                     inter_key_timeout_s=cards.magstripe.inter_key_timeout_s))
        if cards.magstripe.serial_port:
            from agent.drivers.serial_card_reader import SerialCardReader

            self.readers.append(SerialCardReader(cards.magstripe.serial_port, self.sessions.on_stripe,
                                                 baudrate=cards.magstripe.serial_baudrate))

    def start(self) -> None:
        # Said when the agent starts, not when the parts are built: tools that build them (CLI
        # commands, tests) are not the running station the warning is about.
        if not self.pins.pepper_installed:
            log.warning("station PIN key not installed: attendant PINs will be refused until it is")
        # A reader that cannot start (unplugged, grabbed by another program) is reported in the
        # health endpoint; the agent and the other readers keep working.
        self.failed = {}
        for reader in self.readers:
            try:
                reader.start()
            except Exception as exc:  # noqa: BLE001 - device errors come in many types (OSError, termios, evdev)
                log.error("card reader %s could not start: %s", type(reader).__name__, exc)
                self.failed[type(reader).__name__] = type(exc).__name__
        self.started = [r for r in self.readers if type(r).__name__ not in self.failed]

    def stop(self) -> None:
        for reader in self.started:
            reader.stop()

    def health(self) -> dict[str, Any]:
        failed = dict(self.failed)
        # Readers that wait for their device (serial, evdev) start fine while it is unplugged:
        # report them until the device is open, so a technician sees the missing reader.
        for reader in self.started:
            connected = getattr(reader, "connected", None)
            if connected is not None and not connected.is_set():
                failed[type(reader).__name__] = "disconnected"
        return {"state": "error" if failed else "ok", "readers": [type(r).__name__ for r in self.readers],
                "failed_readers": failed, "pin_key_installed": self.pins.pepper_installed}
