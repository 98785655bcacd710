"""In-process event hub: card and session events for the POS (SSE and long polling).

Events get a monotonically increasing ``seq``; the last ``capacity`` are kept so a client
that reconnects with ``Last-Event-ID`` / ``?after=`` gets what it missed (unless it was gone
long enough for the ring to wrap: then it sees ``gap: true`` on the next batch). Memory only:
after an agent restart sequence numbers start again at 1 with a new ``epoch``, and clients
must treat an epoch change as "start over".

Readers publish from their own threads; the API waits with ``next_events`` on the event loop
(a future per waiter, resolved with ``call_soon_threadsafe``), so an open SSE stream or long
poll holds no worker thread: 100 open streams cost 100 small futures, not 100 threads.
"""
from __future__ import annotations

import asyncio
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
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def publish(self, type_: str, data: dict[str, Any]) -> Event:
        with self._cond:
            self._seq += 1
            event = Event(self._seq, type_, data)
            self._events.append(event)
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, set()
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_wake, future)
            except RuntimeError:
                pass  # that loop is closed: nobody is waiting there any more
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

    async def next_events(self, after: int, timeout: float) -> tuple[list[Event], bool]:
        """``wait`` for the event loop: returns as soon as there is an event after ``after``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            with self._cond:
                if self._seq > after:
                    break
                future: asyncio.Future[None] = loop.create_future()
                waiter = (loop, future)
                self._waiters.add(waiter)
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    return [], False
                await asyncio.wait_for(future, remaining)
            except TimeoutError:
                return [], False
            finally:
                with self._cond:
                    self._waiters.discard(waiter)
        return self.since(after)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
