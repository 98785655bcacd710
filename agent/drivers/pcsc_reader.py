"""PC/SC card reader driver (pyscard low-level ``smartcard.scard`` API).

One background thread blocks in ``SCardGetStatusChange`` on the readers whose name matches a
pattern plus the PnP pseudo-reader, so a tap is handled as soon as pcscd reports it (no polling
of our own). On a new card it connects, reads the UID (``FF CA 00 00 00``), decides the card
type from the ATR and, if configured, reads NTAG/Ultralight pages or MIFARE Classic blocks
with keys from config, then calls ``on_read(CardRead)``. Failures go to ``on_error``.

Recovery, in the order it happens in the field:
- "card unpowered"/"transaction failed"/"card reset" while connecting or reading (a card that
  was swapped faster than pcscd's poll, a card at the edge of the field): disconnect, retry a
  few times with a short backoff; if the card is gone, give up silently.
- reader unplugged: it drops out of the list; we wait on the PnP notification (or time out and
  re-list) until a reader matching the pattern appears again.
- pcscd stopped/restarted (``SCARD_E_NO_SERVICE``, ``SCARD_E_SERVICE_STOPPED``, invalid
  context): release the context and establish a new one with backoff.

The UID is the card's identifier, so logs only ever show it masked.

Long on purpose (just over 400 lines): the watch loop and its recovery cases belong together.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from agent.drivers.extras import require
from agent.drivers.pcsc_atr import CardType, card_type_from_atr
from agent.drivers.transitions import LinkState

# pyscard is the optional [pcsc] extra (it compiles): importing this module without it raises
# MissingExtra, which says what to install. Only a configured PC/SC reader imports this module.
scard = require("smartcard.scard", extra="pcsc", device="el lector de tarjetas PC/SC")

log = logging.getLogger(__name__)

PNP_READER = "\\\\?PnP?\\Notification"
APDU_GET_UID = [0xFF, 0xCA, 0x00, 0x00, 0x00]
VALID_UID_LENGTHS = (4, 7, 10)  # ISO 14443-3 single/double/triple size

_SERVICE_GONE = {
    scard.SCARD_E_NO_SERVICE,
    scard.SCARD_E_SERVICE_STOPPED,
    scard.SCARD_E_INVALID_HANDLE,
    scard.SCARD_F_COMM_ERROR,
}
_READER_GONE = {
    scard.SCARD_E_UNKNOWN_READER,
    scard.SCARD_E_READER_UNAVAILABLE,
    scard.SCARD_E_NO_READERS_AVAILABLE,
}
_CARD_GONE = {scard.SCARD_E_NO_SMARTCARD, scard.SCARD_W_REMOVED_CARD}
# Transient: retry after reconnecting (a fast remove/insert, a card at the edge of the field).
_RETRYABLE = {
    scard.SCARD_W_UNPOWERED_CARD,
    scard.SCARD_W_UNRESPONSIVE_CARD,
    scard.SCARD_W_RESET_CARD,
    scard.SCARD_E_NOT_TRANSACTED,
    scard.SCARD_E_SHARING_VIOLATION,
    scard.SCARD_E_PROTO_MISMATCH,
}


def mask_uid(uid: str) -> str:
    """Enough to tell two taps apart in a log, not enough to clone a card.

    >>> mask_uid("04A1B2C3D4E5F6")
    '04****F6'
    """
    return f"{uid[:2]}****{uid[-2:]}" if len(uid) > 4 else "****"


@dataclass(frozen=True)
class CardRead:
    """One card presented to a reader."""

    uid: str  # upper-case hex
    card_type: CardType
    reader: str
    atr: str
    pages: bytes = b""  # NTAG/Ultralight pages read, concatenated
    blocks: Mapping[int, bytes] = field(default_factory=dict)  # MIFARE Classic block -> 16 bytes
    detected_at: float = 0.0  # time.monotonic() when pcscd reported the card


@dataclass(frozen=True)
class CardReadError:
    """A card was presented but could not be read; ``code`` is stable, texts are for people."""

    reader: str
    code: str
    es: str
    en: str
    atr: str = ""


@dataclass(frozen=True)
class MifareKey:
    key: bytes  # 6 bytes
    key_type: str = "A"  # "A" (0x60) or "B" (0x61)

    def __post_init__(self) -> None:
        if len(self.key) != 6 or self.key_type not in ("A", "B"):
            raise ValueError("a MIFARE key is 6 bytes, type A or B")


@dataclass(frozen=True)
class PcscReaderConfig:
    reader_pattern: str = r"ACR122|PICC|Contactless"
    ntag_pages: tuple[int, int] | None = None  # (first page, page count)
    classic_blocks: tuple[int, ...] = ()
    classic_keys: tuple[MifareKey, ...] = (MifareKey(bytes.fromhex("FFFFFFFFFFFF")),)
    status_timeout_ms: int = 2000  # upper bound on how long stop() may wait
    read_attempts: int = 3
    retry_backoff_s: float = 0.05
    service_backoff_s: float = 0.5


class _ServiceGone(Exception):
    pass


class _Retry(Exception):
    def __init__(self, rc: int) -> None:
        super().__init__(scard.SCardGetErrorMessage(rc))
        self.rc = rc


class _CardGone(Exception):
    pass


class _ReadFailed(Exception):
    def __init__(self, code: str, es: str, en: str) -> None:
        super().__init__(en)
        self.code, self.es, self.en = code, es, en


class PcscCardReader:
    """Watches PC/SC readers and reports cards. ``start()`` / ``stop()``; thread-safe to stop."""

    def __init__(
        self,
        on_read: Callable[[CardRead], None],
        config: PcscReaderConfig | None = None,
        *,
        on_error: Callable[[CardReadError], None] | None = None,
        on_removed: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config or PcscReaderConfig()
        self._pattern = re.compile(self.config.reader_pattern)
        self._on_read = on_read
        self._on_error = on_error
        self._on_removed = on_removed
        self._stop = threading.Event()
        self._ctx: int | None = None
        self._ctx_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.readers_seen: set[str] = set()
        # Set while pcscd answers and a reader matching the pattern is plugged in (health).
        self.connected = threading.Event()
        self.link = LinkState(log, "lector de tarjetas PC/SC")

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("reader already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="pcsc-reader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return
        # SCardCancel only wakes a wait that is already in progress; if the thread was between
        # calls, its next SCardGetStatusChange would block for the full timeout. Keep cancelling
        # until it has noticed _stop.
        deadline = time.monotonic() + self.config.status_timeout_ms / 1000 + 5
        while thread.is_alive() and time.monotonic() < deadline:
            with self._ctx_lock:
                if self._ctx is not None:
                    scard.SCardCancel(self._ctx)
            thread.join(timeout=0.02)

    # ---- main loop -------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if rc != scard.SCARD_S_SUCCESS:
                # Retried every service_backoff_s: only the change is logged (by the link state).
                self._set_down("pcscd_unavailable")
                self._stop.wait(self.config.service_backoff_s)
                continue
            with self._ctx_lock:
                self._ctx = ctx
            try:
                self._watch(ctx)
            except _ServiceGone:
                self._set_down("pcscd_unavailable")
                self._stop.wait(self.config.service_backoff_s)
            except Exception:  # never let a driver bug kill the reader thread silently
                log.exception("falló la vigilancia de PC/SC; se reinicia [pcsc_error]")
                self._stop.wait(self.config.service_backoff_s)
            finally:
                with self._ctx_lock:
                    self._ctx = None
                scard.SCardReleaseContext(ctx)

    def _list_matching(self, ctx: int) -> list[str]:
        rc, readers = scard.SCardListReaders(ctx, [])
        if rc in _SERVICE_GONE:
            raise _ServiceGone
        if rc != scard.SCARD_S_SUCCESS:
            return []
        return [r for r in readers if self._pattern.search(r)]

    def _watch(self, ctx: int) -> None:
        states: dict[str, int] = {}
        pnp_state = scard.SCARD_STATE_UNAWARE
        timeout = self.config.status_timeout_ms
        while not self._stop.is_set():
            readers = self._list_matching(ctx)
            if set(readers) != self.readers_seen:
                log.info("lectores: %s [pcsc_readers]", readers or "ninguno coincide")
                self.readers_seen = set(readers)
            if readers:
                self.connected.set()
                self.link.up()
            else:
                self._set_down("no_matching_reader")
            for gone in set(states) - set(readers):
                states.pop(gone)
            query = [(r, states.get(r, scard.SCARD_STATE_UNAWARE)) for r in readers]
            query.append((PNP_READER, pnp_state))
            rc, results = scard.SCardGetStatusChange(ctx, timeout, query)
            if rc == scard.SCARD_E_CANCELLED or self._stop.is_set():
                return
            if rc == scard.SCARD_E_TIMEOUT:
                continue
            if rc in _SERVICE_GONE:
                raise _ServiceGone
            if rc in _READER_GONE:
                states.clear()
                continue
            if rc != scard.SCARD_S_SUCCESS:
                log.warning("SCardGetStatusChange: %s [pcsc_error]", scard.SCardGetErrorMessage(rc))
                self._stop.wait(self.config.retry_backoff_s)
                continue
            now = time.monotonic()
            for reader, event_state, atr in results:
                if reader == PNP_READER:
                    pnp_state = event_state & ~scard.SCARD_STATE_CHANGED
                    continue
                self._on_state(ctx, reader, states, event_state, bytes(atr), now)

    def _on_state(self, ctx: int, reader: str, states: dict[str, int], event_state: int,
                  atr: bytes, now: float) -> None:
        previous = states.get(reader)
        if event_state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_IGNORE):
            states.pop(reader, None)  # reader vanished between listing and waiting
            return
        states[reader] = event_state & ~scard.SCARD_STATE_CHANGED
        present = bool(event_state & scard.SCARD_STATE_PRESENT) and not (
            event_state & scard.SCARD_STATE_MUTE)
        was_present = previous is not None and bool(previous & scard.SCARD_STATE_PRESENT)
        # pcsc-lite counts card events in the upper 16 bits: a remove+insert between two of
        # its polls keeps PRESENT set but bumps the counter, and is a new tap.
        new_event = previous is None or (event_state >> 16) != (previous >> 16)
        if present and (not was_present or new_event):
            self._handle_card(ctx, reader, atr, now)
        elif not present and was_present and self._on_removed is not None:
            self._safe_call(self._on_removed, reader)

    # ---- one card --------------------------------------------------------------------------
    def _handle_card(self, ctx: int, reader: str, atr: bytes, detected_at: float) -> None:
        last_rc = 0
        for attempt in range(self.config.read_attempts):
            if attempt:
                self._stop.wait(self.config.retry_backoff_s * attempt)
            try:
                read = self._connect_and_read(ctx, reader, atr, detected_at)
            except _Retry as exc:
                last_rc = exc.rc
                log.info("tarjeta en %s no lista (%s), se reintenta [card_not_ready]", reader, exc)
                continue
            except _CardGone:
                return  # the card left before we could read it: nothing to report
            except _ReadFailed as exc:
                self._report(CardReadError(reader, exc.code, exc.es, exc.en, atr.hex().upper()))
                return
            log.info("tarjeta %s (%s) en %s [card_read]", mask_uid(read.uid), read.card_type, reader)
            self._safe_call(self._on_read, read)
            return
        self._report(CardReadError(
            reader, "card_unreadable",
            "No se pudo leer la tarjeta. Retírela y acérquela de nuevo al lector.",
            "The card could not be read. Remove it and present it again.",
            atr.hex().upper()))
        log.warning("tarjeta en %s ilegible tras reintentos: %s [card_unreadable]", reader,
                    scard.SCardGetErrorMessage(last_rc))

    def _connect_and_read(self, ctx: int, reader: str, atr: bytes, detected_at: float) -> CardRead:
        rc, handle, protocol = scard.SCardConnect(
            ctx, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        self._check(rc)
        try:
            # The ATR from the status change may belong to the previous card after a fast
            # swap; the connected handle's is authoritative.
            rc, _name, _state, _proto, live_atr = scard.SCardStatus(handle)
            self._check(rc)
            atr = bytes(live_atr) or atr
            card_type = card_type_from_atr(atr)
            if card_type is CardType.CONTACT:
                raise _ReadFailed(
                    "card_unsupported",
                    "Esta tarjeta de contacto no es una tarjeta de fidelización.",
                    "This contact card is not a loyalty card.")
            uid = self._read_uid(handle, protocol)
            pages = b""
            blocks: dict[int, bytes] = {}
            if card_type is CardType.ULTRALIGHT and self.config.ntag_pages is not None:
                pages = self._read_pages(handle, protocol, *self.config.ntag_pages)
            elif card_type.is_classic and self.config.classic_blocks:
                blocks = self._read_classic(handle, protocol)
            return CardRead(uid=uid, card_type=card_type, reader=reader, atr=atr.hex().upper(),
                            pages=pages, blocks=blocks, detected_at=detected_at)
        finally:
            scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)

    def _check(self, rc: int) -> None:
        if rc == scard.SCARD_S_SUCCESS:
            return
        if rc in _CARD_GONE:
            raise _CardGone
        if rc in _SERVICE_GONE:
            raise _ServiceGone
        # _RETRYABLE, a reader that blinked, or anything unexpected: reconnect and try again
        # (bounded by read_attempts), then report the card as unreadable.
        raise _Retry(rc)

    def _transmit(self, handle: int, protocol: int, apdu: list[int]) -> tuple[bytes, int]:
        rc, response = scard.SCardTransmit(handle, protocol, apdu)
        self._check(rc)
        if len(response) < 2:
            raise _Retry(scard.SCARD_E_NOT_TRANSACTED)
        data = bytes(response[:-2])
        return data, (response[-2] << 8) | response[-1]

    def _read_uid(self, handle: int, protocol: int) -> str:
        data, sw = self._transmit(handle, protocol, APDU_GET_UID)
        if sw != 0x9000:
            raise _ReadFailed("card_uid_unavailable",
                              "El lector no entregó el identificador de la tarjeta.",
                              f"The reader did not return the card UID (status {sw:04X}).")
        if len(data) not in VALID_UID_LENGTHS:
            raise _ReadFailed("card_uid_invalid",
                              "El identificador de la tarjeta no es válido.",
                              f"Invalid card UID length {len(data)} (expected 4, 7 or 10 bytes).")
        return data.hex().upper()

    def _read_pages(self, handle: int, protocol: int, first: int, count: int) -> bytes:
        out = bytearray()
        page = first
        while page < first + count:
            data, sw = self._transmit(handle, protocol, [0xFF, 0xB0, 0x00, page, 16])
            if sw != 0x9000 or len(data) != 16:
                raise _ReadFailed("card_read_failed", "No se pudieron leer los datos de la tarjeta.",
                                  f"Reading page {page} failed (status {sw:04X}).")
            out += data
            page += 4  # READ returns 4 pages at a time
        return bytes(out[: count * 4])

    def _read_classic(self, handle: int, protocol: int) -> dict[int, bytes]:
        blocks: dict[int, bytes] = {}
        authenticated_for: int | None = None
        for block in self.config.classic_blocks:
            sector = block // 4 if block < 128 else 32 + (block - 128) // 16
            if sector != authenticated_for:
                if not self._authenticate(handle, protocol, block):
                    raise _ReadFailed("card_auth_failed",
                                      "La tarjeta no pertenece a este programa (clave incorrecta).",
                                      f"No configured key opens block {block}.")
                authenticated_for = sector
            data, sw = self._transmit(handle, protocol, [0xFF, 0xB0, 0x00, block, 16])
            if sw != 0x9000 or len(data) != 16:
                raise _ReadFailed("card_read_failed", "No se pudieron leer los datos de la tarjeta.",
                                  f"Reading block {block} failed (status {sw:04X}).")
            blocks[block] = data
        return blocks

    def _authenticate(self, handle: int, protocol: int, block: int) -> bool:
        for key in self.config.classic_keys:
            _, sw = self._transmit(handle, protocol, [0xFF, 0x82, 0x00, 0x00, 0x06, *key.key])
            if sw != 0x9000:
                continue
            key_code = 0x60 if key.key_type == "A" else 0x61
            _, sw = self._transmit(
                handle, protocol, [0xFF, 0x86, 0x00, 0x00, 0x05, 0x01, 0x00, block, key_code, 0x00])
            if sw == 0x9000:
                return True
        return False

    def _set_down(self, reason: str) -> None:
        self.connected.clear()
        self.link.down(reason)

    # ---- callbacks -------------------------------------------------------------------------
    def _report(self, error: CardReadError) -> None:
        log.warning("falló la lectura de tarjeta en %s: %s [card_read_failed]", error.reader, error.code)
        if self._on_error is not None:
            self._safe_call(self._on_error, error)

    @staticmethod
    def _safe_call(fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception:  # a consumer bug must not stop the reader
            log.exception("falló el manejo de una lectura de tarjeta [card_callback_failed]")
