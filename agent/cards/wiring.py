"""Build the card side of the running agent: PINs, swipe sessions and the readers feeding them."""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.cards.config import CardsSettings
from agent.cards.demo import DEMO_ATTENDANTS, DEV_PEPPER, demo_bundle, dev_public_key, is_dev_public_key
from agent.cards.events import EventHub
from agent.cards.lines import CardLineSettings, parse_reader_line
from agent.cards.pin_bundle import load_public_key
from agent.cards.pins import AttendantPins, load_pepper
from agent.cards.sessions import SwipeSessions
from agent.cards.track import TrackError
from agent.drivers.extras import MissingExtra, UnavailableReader
from agent.errors import AgentError
from agent.lifecycle import Part
from agent.store.db import Database

log = logging.getLogger(__name__)


class ReaderLines:
    """A line reader's callback (serial or wedge): decode the line (track, plain card number or
    hex UID) and open a swipe at that reader, or tell the POS at its counter why not."""

    def __init__(self, sessions: SwipeSessions, settings: CardLineSettings, *, source: str, reader: str) -> None:
        self.sessions, self.settings, self.source, self.reader = sessions, settings, source, reader

    def __call__(self, line: str) -> None:
        try:
            card = parse_reader_line(line, self.settings)
        except TrackError as exc:
            self.sessions.failed(self.reader, exc)
            return
        self.sessions.open(card_id=card.card_id, source=self.source, reader=self.reader, card_type=card.card_type)


class CardStation(Part):
    """Owns the readers; ``sessions`` is what the API and sales use."""

    def __init__(self, cards: CardsSettings, db: Database, *, station_id: str, key_dir: Any,
                 simulated: bool = False, demo: bool = False) -> None:
        try:
            pepper: bytes | None = load_pepper(key_dir)
        except AgentError:
            # Until head office provisions the station key, every PIN is refused (never accepted).
            pepper = None
        public_key = load_public_key(cards.pins.bundle_public_key) if cards.pins.bundle_public_key else None
        pepper, public_key, self.demo_pins = _development_keys(pepper, public_key, simulated, demo)
        self.station_id = station_id
        self.pins = AttendantPins(db, station_id=station_id, settings=cards.pins, pepper=pepper,
                                  public_key=public_key)
        self.hub = EventHub()
        self.sessions = SwipeSessions(self.pins, self.hub, session_ttl_s=cards.session_ttl_s,
                                      authorized_ttl_s=cards.authorized_ttl_s,
                                      authorized_uses=cards.authorized_uses,
                                      pin_attempts_per_swipe=cards.pin_attempts_per_swipe,
                                      pos_for_reader=cards.pos_for_reader)
        self.readers: list[Any] = []
        self.started: list[Any] = []
        self.failed: dict[str, str] = {}
        if cards.pcsc.enabled:
            try:
                from agent.drivers.pcsc_reader import MifareKey, PcscCardReader, PcscReaderConfig
            except MissingExtra as exc:  # reported as a failed reader; the rest of the agent runs
                self.readers.append(UnavailableReader("PcscCardReader", exc))
            else:
                self._add_pcsc(cards, MifareKey, PcscCardReader, PcscReaderConfig)
        if cards.magstripe.evdev_device:
            from agent.drivers.magstripe_evdev import EvdevMagstripeReader

            wedge = ReaderLines(self.sessions, cards.lines, source="magstripe", reader=cards.magstripe.evdev_name)
            self.readers.append(EvdevMagstripeReader(cards.magstripe.evdev_device, wedge,
                                                     inter_key_timeout_s=cards.magstripe.inter_key_timeout_s))
        if cards.magstripe.serial_port:
            from agent.drivers.serial_card_reader import SerialCardReader

            serial_lines = ReaderLines(self.sessions, cards.lines, source="serial", reader=cards.magstripe.serial_name)
            self.readers.append(SerialCardReader(cards.magstripe.serial_port, serial_lines,
                                                 baudrate=cards.magstripe.serial_baudrate))

    def _add_pcsc(self, cards: CardsSettings, key_type: Any, reader_type: Any, config_type: Any) -> None:
        keys = tuple(key_type(bytes.fromhex(k.split(":")[-1]), "B" if k.startswith("B:") else "A")
                     for k in cards.pcsc.classic_keys)
        config = config_type(reader_pattern=cards.pcsc.reader_pattern, ntag_pages=cards.pcsc.ntag_pages,
                             classic_blocks=tuple(cards.pcsc.classic_blocks), classic_keys=keys)
        self.readers.append(reader_type(self.sessions.on_card_read, config, on_error=self.sessions.on_card_error))

    def _name(self, reader: Any) -> str:
        return reader.name if isinstance(reader, UnavailableReader) else type(reader).__name__

    def start(self) -> None:
        if self.demo_pins and self.pins.installed_version() is None:
            # Simulated mode without real keys: the demo attendants (agent/cards/demo.py).
            self.pins.import_bundle(demo_bundle(self.station_id, datetime.now(timezone.utc)))
        # Said when the agent starts, not when the parts are built: tools that build them (CLI
        # commands, tests) are not the running station the warning is about.
        if self.demo_pins:
            log.warning("clave de PIN de la estación no instalada: el modo simulado usa la clave de desarrollo y "
                        "los playeros de demostración %s (una estación real los rechaza) [pin_key_missing]", ", ".join(sorted(DEMO_ATTENDANTS)))
        elif not self.pins.pepper_installed:
            log.warning("clave de PIN de la estación no instalada: los PIN de los playeros se rechazarán hasta "
                        "instalarla [pin_key_missing]")
        # A reader that cannot start (unplugged, grabbed by another program) is reported in the
        # health endpoint; the agent and the other readers keep working.
        self.failed = {}
        for reader in self.readers:
            try:
                reader.start()
            except Exception as exc:  # noqa: BLE001 - device errors come in many types (OSError, termios, evdev)
                log.error("el lector de tarjetas %s no pudo iniciar: %s [card_reader_failed]", self._name(reader), exc)
                self.failed[self._name(reader)] = type(exc).__name__
        self.started = [r for r in self.readers if self._name(r) not in self.failed]

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
        return {"state": "error" if failed else "ok", "readers": [self._name(r) for r in self.readers],
                "failed_readers": failed, "pin_key_installed": self.pins.pepper_installed,
                "demo_attendants": self.demo_pins}


def _development_keys(pepper: bytes | None, public_key: Ed25519PublicKey | None, simulated: bool,
                      demo: bool) -> tuple[bytes | None, Ed25519PublicKey | None, bool]:
    """(pepper, bundle key, demo attendants?) for this mode. Real mode never accepts the public
    development pepper or key; a simulated demo station (no head office) uses them only when no
    real one is installed."""
    if not simulated:
        if pepper == DEV_PEPPER:
            log.error("la clave de PIN de desarrollo está instalada en una estación real: se ignora y los PIN se "
                      "rechazan [pin_key_development]")
            pepper = None
        if public_key is not None and is_dev_public_key(public_key):
            log.error("cards.pins.bundle_public_key es la clave de desarrollo: se ignora y no se acepta ningún "
                      "paquete de PIN [pin_bundle_key_development]")
            public_key = None
        return pepper, public_key, False
    if demo and pepper is None and public_key is None:
        return DEV_PEPPER, dev_public_key(), True
    return pepper, public_key, False
