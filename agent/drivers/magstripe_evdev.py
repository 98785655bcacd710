"""Keyboard-wedge magnetic stripe reader through python-evdev.

The device (``/dev/input/by-id/...-event-kbd``) is grabbed exclusively (EVIOCGRAB) so swipes
never reach a console or another program. Key events go through the pure ``WedgeDecoder``;
complete records go to ``on_record(str)``. The raw record contains the card number (and on
track 1 the holder's name): it is never logged.
"""
from __future__ import annotations

import logging
import os
import select
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from agent.drivers.extras import require
from agent.drivers.keymap import WedgeDecoder
from agent.drivers.transitions import LinkState

log = logging.getLogger(__name__)

_DEVICE = "el lector de banda magnética (teclado USB)"

EV_KEY = 1


def pump(events: Iterable[Any], decoder: WedgeDecoder, on_record: Callable[[str], None]) -> int:
    """Feed evdev ``InputEvent``s (``type``, ``code``, ``value``, ``timestamp()``) to the decoder.

    Returns the number of records delivered. Separate from the device loop so it can be driven
    with scripted events (there is no uinput in CI to create a real input device).
    """
    delivered = 0
    for event in events:
        if event.type != EV_KEY:
            continue
        record = decoder.feed(event.code, event.value, event.timestamp())
        if record is not None:
            delivered += 1
            try:
                on_record(record)
            except Exception:
                log.exception("falló el manejo de una lectura de banda magnética [card_callback_failed]")
    return delivered


def open_grabbed(path: str) -> Any:
    """Open the input device and grab it exclusively (fails if another program grabbed it)."""
    # Imported here: no import-time dependency on the input subsystem, and evdev is the optional
    # [evdev] extra (it compiles).
    evdev = require("evdev", extra="evdev", device=_DEVICE)

    device = evdev.InputDevice(path)
    try:
        device.grab()
    except OSError:
        device.close()
        raise
    return device


class EvdevMagstripeReader:
    """Reads one wedge reader; waits for it when missing and reopens it after an unplug.

    ``connected`` is set while the device is open and grabbed, which ``/v1/health`` reports.
    """

    def __init__(self, device_path: str, on_record: Callable[[str], None], *,
                 inter_key_timeout_s: float = 0.15, reopen_every_s: float = 2.0,
                 opener: Callable[[str], Any] = open_grabbed, decoder: WedgeDecoder | None = None,
                 label: str = "lector de banda magnética") -> None:
        self.device_path = device_path
        self._on_record = on_record
        # Other wedge devices (an ID scanner) bring a decoder of their own layout and record size.
        self.decoder = decoder or WedgeDecoder(inter_key_timeout_s=inter_key_timeout_s)
        self.reopen_every_s = reopen_every_s
        self._open = opener
        self._stop = threading.Event()
        self.connected = threading.Event()
        self.link = LinkState(log, f"{label} {device_path}")
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1

    def start(self) -> None:
        if self._open is open_grabbed:  # a missing binding is a failed start, not a retry loop
            require("evdev", extra="evdev", device=_DEVICE)
        self._stop.clear()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="magstripe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                device = self._open(self.device_path)
            except OSError as exc:  # missing (ENOENT), unplugged (ENODEV), grabbed elsewhere (EBUSY)
                # Once per outage (the link state logs changes only): a missing reader must not
                # flood the journal.
                self.link.down(_errno_code(exc))
                self._sleep(self.reopen_every_s)
                continue
            self.link.up()
            self.connected.set()
            try:
                self._read(device)
            finally:
                self.connected.clear()
                self.decoder.reset()  # half a swipe from before the unplug is not a card
                _release(device)
            self._sleep(self.reopen_every_s)  # a device that opens but cannot be read must not spin

    def _read(self, device: Any) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([device.fd, self._wake_r], [], [], self.decoder.inter_key_timeout_s)
            if self._wake_r in ready:
                return
            if not ready:
                if self.decoder.expire(time.time()):
                    log.info("lectura de banda magnética incompleta descartada (pausa entre teclas) [magstripe_partial]")
                continue
            try:
                pump(device.read(), self.decoder, self._on_record)
            except OSError as exc:  # unplugged: ENODEV
                if not self._stop.is_set():
                    self.link.down(_errno_code(exc))
                return

    def _sleep(self, seconds: float) -> None:
        """Wait, but wake at once on stop()."""
        select.select([self._wake_r], [], [], seconds)

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=2)
        if self._thread.is_alive():
            return  # stuck in a device call: leave its pipe open rather than pull it from under it
        self._thread = None
        os.close(self._wake_r)
        os.close(self._wake_w)


def _release(device: Any) -> None:
    try:
        device.ungrab()
    except OSError:
        pass  # already gone with the unplug
    try:
        device.close()
    except OSError:
        pass


def _errno_code(exc: OSError) -> str:
    """A stable reason for the log and health: the errno name (ENODEV), not the message."""
    import errno

    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)
