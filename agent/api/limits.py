"""Request limits: oversized bodies refused before they are buffered; bounded expensive work."""
from __future__ import annotations

import asyncio
import json
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.errors import AgentError, prefers_english


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await self._refuse(scope, send)
            return
        seen = 0
        too_large = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    raise _TooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            # A chunked body (no Content-Length) is only found too large while the app reads
            # it; the framework turns our exception into its own 400, which we replace here.
            nonlocal replaced
            if too_large:
                if message["type"] == "http.response.start" and not replaced:
                    replaced = True
                    await self._refuse(scope, send)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _TooLarge:
            if not replaced:
                await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        english = prefers_english(headers.get(b"accept-language", b"").decode("latin-1"))
        message = (f"Request body larger than {self.max_bytes} bytes." if english
                   else f"El cuerpo de la solicitud supera {self.max_bytes} bytes.")
        body: dict[str, Any] = {"type": "urn:loyalty-agent:problem:body_too_large", "title": message,
                                "status": 413, "detail": message, "code": "body_too_large",
                                "instance": scope.get("path"), "errors": []}
        raw = json.dumps(body, ensure_ascii=False).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(raw)).encode())]})
        await send({"type": "http.response.body", "body": raw})


class AsyncSlots:
    """At most ``size`` holders at once; waiters wait on the event loop, not in a worker thread.

    Used for PIN checks (argon2id, 19 MiB each): 40 parallel requests must neither take 40 threads
    nor 760 MiB. Only the event loop's thread touches the counter, so it needs no lock; polling
    (not an asyncio primitive) keeps it independent of which loop runs the app."""

    POLL_S = 0.005

    def __init__(self, size: int) -> None:
        self.size = size
        self.held = 0

    async def acquire(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.held >= self.size:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(self.POLL_S)
        self.held += 1
        return True

    def release(self) -> None:
        self.held -= 1


class FailuresPerClient:
    """Wrong PINs per API client (POS token) in a sliding window: at most ``limit``.

    The station pauses every PIN check after ``station_max_failures`` wrong PINs (30 in 10 min)
    from anyone: without this, one misbehaving POS (or one stolen token) could pause the whole
    station. A client is refused (423 ``pos_pin_paused``) while it has ``limit`` failures in the
    last ``window_s``; with ``limit`` a third of the station's it takes three POS to pause the
    station. Kept in memory (a restart forgets it; the station's own count is persisted).
    Only the event loop's thread touches it, so it needs no lock."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after_s(self, client_id: str) -> int | None:
        """Seconds until ``client_id`` may try a PIN again, None if it may now."""
        times = self._failures.get(client_id)
        if not times:
            return None
        now = self._clock()
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) < self.limit:
            if not times:
                del self._failures[client_id]
            return None
        return max(1, math.ceil(times[0] + self.window_s - now))

    def record(self, client_id: str) -> None:
        self._failures.setdefault(client_id, deque()).append(self._clock())


def pos_pin_paused(retry_after_s: int) -> AgentError:
    minutes = max(1, round(retry_after_s / 60))
    return AgentError("pos_pin_paused",
                      f"Demasiados PIN incorrectos desde este punto de venta: pausado por {minutes} min; "
                      "avise al supervisor.",
                      f"Too many wrong PINs from this point of sale: paused for {minutes} min; tell the supervisor.",
                      status=423, extra={"retry_after_s": retry_after_s})
