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
from collections.abc import Callable, Iterable
from typing import Any

from agent.drivers.keymap import WedgeDecoder

log = logging.getLogger(__name__)

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
                log.exception("magstripe record callback failed")
    return delivered


class EvdevMagstripeReader:
    def __init__(self, device_path: str, on_record: Callable[[str], None], *,
                 inter_key_timeout_s: float = 0.15) -> None:
        self.device_path = device_path
        self._on_record = on_record
        self.decoder = WedgeDecoder(inter_key_timeout_s=inter_key_timeout_s)
        self._thread: threading.Thread | None = None
        self._wake_r, self._wake_w = -1, -1
        self._device: Any = None

    def start(self) -> None:
        import evdev  # imported here: no import-time dependency on the input subsystem

        device = evdev.InputDevice(self.device_path)
        device.grab()  # exclusive: fails if another program (or X) already grabbed it
        self._device = device
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="magstripe", daemon=True)
        self._thread.start()
        log.info("magstripe reader %s grabbed", self.device_path)

    def _run(self) -> None:
        device = self._device
        while True:
            timeout = self.decoder.inter_key_timeout_s
            ready, _, _ = select.select([device.fd, self._wake_r], [], [], timeout)
            if self._wake_r in ready:
                return
            if not ready:
                import time

                if self.decoder.expire(time.time()):
                    log.info("partial magstripe record dropped after inter-key timeout")
                continue
            try:
                pump(device.read(), self.decoder, self._on_record)
            except OSError as exc:  # unplugged: ENODEV
                log.warning("magstripe reader lost: %s", exc)
                return

    def stop(self) -> None:
        if self._thread is not None:
            os.write(self._wake_w, b"x")
            self._thread.join(timeout=2)
            self._thread = None
            os.close(self._wake_r)
            os.close(self._wake_w)
        if self._device is not None:
            try:
                self._device.ungrab()
            except OSError:
                pass
            self._device.close()
            self._device = None
