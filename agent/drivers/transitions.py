"""Up/down state of one device or link, logged once per change and never once per retry.

A reader whose service is gone retries every half second; a broker outage retries with a
backoff for hours. Logging each attempt buried the one line a technician needs (``lost at
03:12``, ``back at 05:40 after 2 h 28 min``) under 170,000 others. Each retry still goes to
DEBUG. Messages are Spanish and end with a stable code in brackets, so they can be grepped
and alerted on whatever the wording becomes.

Device protocol code imports this, so it depends on nothing but the standard library.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


def describe_duration(seconds: float) -> str:
    """A duration as a technician reads it.

    >>> describe_duration(4.2), describe_duration(125), describe_duration(8880), describe_duration(90061)
    ('4 s', '2 min 5 s', '2 h 28 min', '1 d 1 h 1 min')
    """
    total = int(round(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h {minutes} min"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@dataclass(frozen=True)
class LinkSnapshot:
    state: str  # "unknown" (never seen either way yet) | "up" | "down"
    since: str | None  # UTC ISO 8601 of the last change
    reason: str | None  # a stable code (never personal data) while down
    for_s: float  # how long it has been in this state (unknown: since the watch was created)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "since": self.since, "reason": self.reason, "for_s": self.for_s}


class LinkState:
    """Thread-safe; ``down()`` and ``up()`` may be called on every attempt, only changes log.

    ``what`` names the device or link in Spanish ("lector de tarjetas PC/SC"); ``codes`` are the
    stable codes of the two log lines (lost, back), e.g. ``("device_lost", "device_back")``.
    """

    def __init__(self, logger: logging.Logger, what: str, codes: tuple[str, str] = ("device_lost", "device_back"),
                 *, clock: Any = time.monotonic) -> None:
        self._log = logger
        self.what = what
        self._codes = codes
        self._clock = clock
        self._lock = threading.Lock()
        self._state = "unknown"
        self._reason: str | None = None
        self._changed_at = clock()
        self._since: str | None = None
        self.recoveries = 0  # times it came back after being down (reconnections)

    def down(self, reason: str, *, quiet: bool = False) -> bool:
        """Record the device or link as down; logs a warning if it was up or unknown. Returns
        whether this was a change. ``quiet`` records it without a warning (e.g. a clean stop)."""
        with self._lock:
            if self._state == "down":
                self._reason = reason
                changed = False
            else:
                was_up = self._state == "up"
                self._state, self._reason = "down", reason
                self._mark_change()
                changed = True
        if changed and not quiet:
            verb = "se perdió la conexión" if was_up else "no disponible"
            self._log.warning("%s: %s (%s) [%s]", self.what, verb, reason, self._codes[0])
        elif not changed:
            self._log.debug("%s: sigue sin conexión (%s)", self.what, reason)
        return changed

    def up(self) -> bool:
        """Record the device or link as up; after an outage logs how long it lasted."""
        with self._lock:
            if self._state == "up":
                return False
            previous, lasted = self._state, self._clock() - self._changed_at
            self._state, self._reason = "up", None
            if previous == "down":
                self.recoveries += 1
            self._mark_change()
        if previous == "down":
            self._log.info("%s: conexión restablecida tras %s sin servicio [%s]", self.what,
                              describe_duration(lasted), self._codes[1])
        else:
            self._log.info("%s: conectado [connected]", self.what)
        return True

    def _mark_change(self) -> None:
        self._changed_at = self._clock()
        self._since = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    @property
    def is_up(self) -> bool:
        return self._state == "up"

    def snapshot(self) -> LinkSnapshot:
        with self._lock:
            return LinkSnapshot(self._state, self._since, self._reason, round(self._clock() - self._changed_at, 3))
