"""Hand-held ID scanners in the running agent: a serial MRZ reader and a keyboard-wedge PDF417/QR
scanner (``[idcard.scanners]``), their reads kept briefly for the POS.

Each read goes through :func:`agent.idcard.scanned_text.parse_scanned` (the camera's parsers)
and becomes a :class:`Scan` with an id. The POS learns of it from the event stream
(``GET /v1/events``, type ``idcard.scanned``: the scan id, source, status and error code, never
the person's data) and fetches it with ``GET /v1/idcard/scans/{scan_id}`` (or ``/latest``); a scan
that read a document enrolls like a capture (``POST /v1/idcard/captures/{scan_id}/customer``).
Scans hold personal data: memory only, forgotten after ``keep_s``, never logged.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agent.idcard.config import IdScannerSettings
from agent.idcard.errors import IdCardError
from agent.idcard.scanned_text import parse_scanned, scanned_symbology
from agent.idcard.schema import IdDocument
from agent.lifecycle import Part

if TYPE_CHECKING:
    from agent.cards.events import EventHub

log = logging.getLogger(__name__)
MAX_SCANS = 20  # a counter sees a few scans a minute; older ones have been used or abandoned


@dataclass
class Scan:
    scan_id: str
    source: str  # "mrz_reader" | "wedge_scanner"
    received_at: str
    status: str  # "read" | "refused"
    format: str  # "MRZ", "PDF417" or "QR": the text's shape (a scanner does not say)
    document: IdDocument | None = None
    code: str | None = None  # why it was refused (the parsers' stable codes)
    message_es: str | None = None
    message_en: str | None = None
    image_ids: dict[str, str] = field(default_factory=dict)  # none: enrolls like a capture without photos
    at: float = 0.0  # monotonic, for expiry

    def to_dict(self, lang: str = "es") -> dict[str, Any]:
        return {"scan_id": self.scan_id, "source": self.source, "received_at": self.received_at,
                "status": self.status, "format": self.format,
                "document": self.document.to_dict() if self.document else None,
                "warnings": list(self.document.warnings) if self.document else [], "code": self.code,
                "message": self.message_en if lang == "en" else self.message_es}

    def event(self) -> dict[str, Any]:
        """What the event stream carries: enough to fetch and to say what happened, no person."""
        return {"scan_id": self.scan_id, "source": self.source, "status": self.status, "format": self.format,
                "code": self.code, "message_es": self.message_es, "message_en": self.message_en}


class ScanInbox:
    """The last scans, each for ``keep_s``; thread-safe (readers' threads add, the API reads)."""

    def __init__(self, keep_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.keep_s = keep_s
        self._clock = clock
        self._scans: deque[Scan] = deque(maxlen=MAX_SCANS)
        self._lock = threading.Lock()

    def add(self, scan: Scan) -> None:
        scan.at = self._clock()
        with self._lock:
            self._scans.append(scan)

    def _fresh(self) -> list[Scan]:
        horizon = self._clock() - self.keep_s
        with self._lock:
            while self._scans and self._scans[0].at < horizon:
                self._scans.popleft()
            return list(self._scans)

    def get(self, scan_id: str) -> Scan | None:
        return next((s for s in self._fresh() if s.scan_id == scan_id), None)

    def latest(self) -> Scan | None:
        fresh = self._fresh()
        return fresh[-1] if fresh else None


def scan_of(text: str | bytes, source: str) -> Scan:
    """Parse one scanner read into a scan (read, or refused with the parser's code)."""
    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    symbology = scanned_symbology(raw)
    scan = Scan(secrets.token_hex(12), source, datetime.now(UTC).isoformat(timespec="seconds"), "read", symbology)
    try:
        scan.document = parse_scanned(text)
    except IdCardError as exc:
        scan.status, scan.code, scan.message_es, scan.message_en = "refused", exc.code, exc.es, exc.en
    return scan


class IdScanners(Part):
    """The configured scanners as one part: started and stopped with the agent, in ``/v1/health``."""

    def __init__(self, settings: IdScannerSettings, hub: EventHub | None) -> None:
        self.settings = settings
        self.hub = hub
        self.inbox = ScanInbox(settings.keep_s)
        self.readers: dict[str, Any] = {}  # source -> driver (each has .link, .connected, start/stop)
        self.failed: dict[str, str] = {}
        self._build()  # no I/O yet: the drivers open their devices in start()

    def _deliver(self, source: str) -> Callable[[Any], None]:
        def deliver(text: Any) -> None:
            scan = scan_of(text, source)
            self.inbox.add(scan)
            if self.hub is not None:
                self.hub.publish("idcard.scanned", scan.event())
            log.info("lectura del escáner de documentos %s: %s %s [idcard_scanned]", source, scan.status,
                     scan.code or scan.format)
        return deliver

    def _build(self) -> None:
        s = self.settings
        if s.mrz_serial_port:
            from agent.drivers.mrz_serial import SerialMrzReader

            self.readers["mrz_reader"] = SerialMrzReader(s.mrz_serial_port, self._deliver("mrz_reader"),
                                                         baudrate=s.mrz_baudrate)
        if s.wedge_device:
            from agent.drivers.keymap import WedgeDecoder
            from agent.drivers.magstripe_evdev import EvdevMagstripeReader

            decoder = WedgeDecoder(inter_key_timeout_s=s.inter_key_timeout_s, max_record_chars=4096,
                                   layout=s.wedge_layout)
            self.readers["wedge_scanner"] = EvdevMagstripeReader(
                s.wedge_device, self._deliver("wedge_scanner"), decoder=decoder,
                label="escáner de documentos (teclado)")

    def start(self) -> None:
        # A scanner that cannot start (evdev missing, port refused) is reported, never fatal.
        for source, reader in list(self.readers.items()):
            try:
                reader.start()
            except Exception as exc:  # noqa: BLE001 - device errors come in many types
                log.error("el escáner de documentos %s no pudo iniciar: %s [idcard_scanner_start_failed]", source,
                          type(exc).__name__)
                self.failed[source] = type(exc).__name__

    def stop(self) -> None:
        for source, reader in self.readers.items():
            if source not in self.failed:
                reader.stop()

    def health(self) -> dict[str, Any]:
        failed = dict(self.failed)
        for source, reader in self.readers.items():
            if source not in failed and not reader.connected.is_set():
                failed[source] = "disconnected"  # waiting for the device: a technician should know
        return {"state": "error" if failed else "ok", "scanners": sorted(self.readers), "failed_scanners": failed}
