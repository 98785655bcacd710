"""Connection limits for the local API: header and idle timeouts, a cap on open connections,
and one log line (not one traceback per attempt) when the cap or the fd limit is reached.

uvicorn alone keeps a connection that never sends a request open forever, and counts idle
connections against nothing; 1,100 idle sockets against a 1,024-fd agent made /v1/health time
out while asyncio logged a traceback per failed accept(). Here:
- a request's headers must arrive within ``header_timeout_s`` of its first byte (or of the
  connection opening), and an idle keep-alive connection closes after the same time;
- past ``max_connections`` the oldest idle connections are closed to make room; if every
  connection is busy the new one is closed at once;
- the soft RLIMIT_NOFILE is raised to the hard one, and asyncio's repeated accept() errors are
  logged once a minute.
"""
from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)


class _Episode:
    """Logs a condition once when it starts, not on every occurrence."""

    def __init__(self, message: str) -> None:
        self.message = message
        self.active = False

    def hit(self, *args: Any) -> None:
        if not self.active:
            self.active = True
            log.warning(self.message, *args)

    def clear(self) -> None:
        self.active = False


class GuardedH11Protocol(H11Protocol):
    header_timeout_s: float = 10.0
    max_connections: int = 200
    _full = _Episode("límite de conexiones de la API (%d) alcanzado: se cierran las inactivas y se rechazan "
                     "nuevas mientras todas estén ocupadas [api_connections_full]")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._header_cycle: Any = None
        self._opened_at = time.monotonic()
        if len(self.connections) > self.max_connections and not self._make_room():
            self._full.hit(self.max_connections)
            transport.close()
            return
        if len(self.connections) <= self.max_connections // 2:
            self._full.clear()
        self._arm_header_timer()

    def _make_room(self) -> bool:
        """Close the oldest idle connection (no request in progress); False if there is none."""
        idle = [c for c in self.connections if c is not self and isinstance(c, GuardedH11Protocol) and c.idle]
        if not idle:
            return False
        self._full.hit(self.max_connections)
        oldest = min(idle, key=lambda c: c._opened_at)
        oldest.transport.close()
        return True

    @property
    def idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_header_timer(self) -> None:
        self._header_cycle = self.cycle
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.cycle is self._header_cycle and not self.transport.is_closing():
            self.transport.close()  # headers never completed (or the connection sat idle)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return  # refused or timed out: read nothing more
        if self._header_timer is None and self.idle:
            self._arm_header_timer()  # the next request starts now
        super().data_received(data)
        if self._header_timer is not None and self.cycle is not self._header_cycle:
            self._header_timer.cancel()  # its headers are complete: the app has it
            self._header_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._header_timer is None and not self.transport.is_closing():
            self._arm_header_timer()  # idle keep-alive connections close after the same time

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_header_timer", None) is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)


def protocol_class(header_timeout_s: float, max_connections: int) -> type[GuardedH11Protocol]:
    return type("ConfiguredH11Protocol", (GuardedH11Protocol,),
                {"header_timeout_s": header_timeout_s, "max_connections": max_connections})


def raise_fd_limit() -> int:
    """Use the hard file-descriptor limit (systemd's default soft limit is 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


class OncePerMinute(logging.Filter):
    """For asyncio's "socket.accept() out of system resource": one record a minute, no traceback."""

    def __init__(self, needle: str, period_s: float = 60.0) -> None:
        super().__init__()
        self.needle = needle
        self.period_s = period_s
        self._last = -period_s

    def filter(self, record: logging.LogRecord) -> bool:
        if self.needle not in record.getMessage():
            return True
        now = time.monotonic()
        if now - self._last < self.period_s:
            return False
        self._last = now
        record.exc_info = None
        record.exc_text = None
        return True


def install_accept_error_filter() -> None:
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, OncePerMinute) for f in logger.filters):
        logger.addFilter(OncePerMinute("out of system resource"))
