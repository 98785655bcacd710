"""Long-lived responses (SSE streams, long polls): bounded per token, closed on revocation.

A stream waits on the event loop (``EventHub.next_events``), never in a worker thread, so open
streams cannot starve the routes that need threads. Each token may hold
``api.max_streams_per_client`` of them (429 ``too_many_streams`` past it: a browser POS with
many tabs gets a clear answer instead of slowly stalling the agent). Every ``REVALIDATE_S`` and
before any event is sent the token is checked again, so ``token revoke`` ends open streams and
no swipe reaches a revoked client.
"""
from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from agent.cards.events import Event, EventHub
from agent.errors import AgentError

KEEPALIVE_S = 15.0
REVALIDATE_S = 2.0
MAX_SEQ = 2**53  # sequence numbers stay far below; larger values are not ours
_SEQ = re.compile(r"[0-9]{1,16}")


class StreamRegistry:
    """Open streams per client. Used only from the event loop's thread, so no lock."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._open: Counter[str] = Counter()

    def open(self, client_id: str) -> Callable[[], None]:
        """Count a new stream for ``client_id`` and return the function that ends it (idempotent)."""
        if self._open[client_id] >= self.per_client:
            raise AgentError(
                "too_many_streams",
                f"Este punto de venta ya tiene {self.per_client} conexiones de eventos abiertas; cierre pestañas "
                "o ventanas que no use.",
                f"This point of sale already has {self.per_client} event connections open; close unused tabs "
                "or windows.",
                status=429)
        self._open[client_id] += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._open[client_id] -= 1
                if self._open[client_id] <= 0:
                    del self._open[client_id]

        return release

    def count(self, client_id: str | None = None) -> int:
        return self._open[client_id] if client_id is not None else sum(self._open.values())


def parse_last_event_id(value: str) -> int:
    """``Last-Event-ID`` as a sequence number: ASCII digits, bounded; anything else is a 400."""
    if not _SEQ.fullmatch(value) or int(value) > MAX_SEQ:
        raise AgentError("invalid_last_event_id",
                         "Last-Event-ID no válido: debe ser el número de secuencia de un evento.",
                         "Invalid Last-Event-ID: it must be an event's sequence number.",
                         status=400, field="Last-Event-ID")
    return int(value)


def event_json(event: Event) -> dict[str, Any]:
    return {"seq": event.seq, "type": event.type, "data": event.data, "at": event.at}


async def sse(hub: EventHub, start: int, still_allowed: Callable[[], bool]) -> AsyncIterator[str]:
    """The Server-Sent Events body: hello, then events as they come, keep-alives when quiet."""
    loop = asyncio.get_running_loop()
    cursor = start
    yield f"retry: 2000\nevent: hello\ndata: {json.dumps({'epoch': hub.epoch, 'last_seq': hub.last_seq})}\n\n"
    last_write = loop.time()
    while True:
        batch, _gap = await hub.next_events(cursor, REVALIDATE_S)
        if not still_allowed():
            return  # token revoked: end the stream, send nothing more
        for event in batch:
            cursor = event.seq
            yield f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(event_json(event))}\n\n"
        if batch:
            last_write = loop.time()
        elif loop.time() - last_write >= KEEPALIVE_S:
            last_write = loop.time()
            yield ": keep-alive\n\n"


class TrackedStream(StreamingResponse):
    """A streaming response that ends its registry entry however it ends (even if never started)."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()
