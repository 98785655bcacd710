"""In-process event hub: card and session events for the POS (SSE and long polling).

Events get a monotonically increasing ``seq``; the last ``capacity`` are kept so a client
that reconnects with ``Last-Event-ID`` / ``?after=`` gets what it missed (unless it was gone
long enough for the ring to wrap: then it sees ``gap: true`` on the next batch). Memory only:
after an agent restart sequence numbers start again at 1 with a new ``epoch``, and clients
must treat an epoch change as "start over".
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    seq: int
    type: str
    data: dict[str, Any]
    at: float = field(default_factory=time.time)


class EventHub:
    def __init__(self, capacity: int = 1000) -> None:
        self.epoch = uuid.uuid4().hex[:12]
        self._events: deque[Event] = deque(maxlen=capacity)
        self._seq = 0
        self._cond = threading.Condition()

    def publish(self, type_: str, data: dict[str, Any]) -> Event:
        with self._cond:
            self._seq += 1
            event = Event(self._seq, type_, data)
            self._events.append(event)
            self._cond.notify_all()
            return event

    @property
    def last_seq(self) -> int:
        with self._cond:
            return self._seq

    def since(self, after: int) -> tuple[list[Event], bool]:
        """Events with seq > after, and whether some were already dropped from the ring."""
        with self._cond:
            events = [e for e in self._events if e.seq > after]
            gap = bool(self._events) and self._events[0].seq > after + 1
            return events, gap

    def wait(self, after: int, timeout: float) -> tuple[list[Event], bool]:
        """Block until there is an event after ``after`` or ``timeout`` passes (long polling)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._seq <= after:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return [], False
                self._cond.wait(remaining)
        return self.since(after)
