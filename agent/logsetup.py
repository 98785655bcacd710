"""Logging to stderr for journald, masked (``agent.logmask``) and one record per line.

Every message is masked and has its control characters escaped after its arguments are merged,
so a value never adds a line of its own; under journald each line of a traceback gets the
record's ``<N>`` priority prefix, so text inside an exception cannot start a line with a
priority of its choosing either. Recent warnings are kept for the technician console.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from collections import deque
from datetime import datetime, timezone
from typing import Any

from agent.logmask import escape_controls, mask_personal

_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def clean(text: str, *, keep_newlines: bool = False) -> str:
    """Mask personal data, then escape control characters (in that order: after escaping, a
    number behind a tab would follow the letter of ``\\t`` and look like part of a word)."""
    return escape_controls(mask_personal(text), keep_newlines=keep_newlines)


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = clean(record.getMessage())
        record.args = None
        return True


class MaskingFormatter(logging.Formatter):
    """Tracebacks are masked too: an exception's message may quote the input that caused it."""

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]
        return clean(super().formatException(ei), keep_newlines=True)

    def formatStack(self, stack_info: str) -> str:
        return clean(super().formatStack(stack_info), keep_newlines=True)


class JournalFormatter(MaskingFormatter):
    """``<N>`` on every line so journald stores the right priority; no timestamp (journald adds it)."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        text = f"{record.name}: {super().format(record)}"
        return "\n".join(prefix + line for line in text.split("\n"))


class RecentAlerts(logging.Handler):
    """The last warnings and errors (already masked), for the technician console."""

    def __init__(self, capacity: int = 50) -> None:
        super().__init__(level=logging.WARNING)
        self._items: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._lock_items = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        item = {"at": datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "level": record.levelname, "logger": record.name, "message": clean(record.getMessage())}
        with self._lock_items:
            self._items.append(item)

    def items(self) -> list[dict[str, Any]]:
        """Newest first."""
        with self._lock_items:
            return list(reversed(self._items))


def recent_alerts() -> RecentAlerts:
    """The root logger's alert buffer (added on first use, also when logging is not configured)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, RecentAlerts):
            return handler
    handler = RecentAlerts()
    root.addHandler(handler)
    return handler


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        handler.setFormatter(JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler, RecentAlerts()]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
