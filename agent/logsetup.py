"""Logging to stderr for journald, with a last line of defence against personal data.

Code never logs names or full document numbers on purpose; the filter below also masks
any long run of digits (document, phone and card numbers) that slips into a message.
"""
from __future__ import annotations

import logging
import os
import re
import sys

_LONG_NUMBER = re.compile(r"(?<![\w-])(\+?\d[\d.\- ]{5,}\d[kK]?)(?![\w-])")
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}


def mask_numbers(text: str) -> str:
    """Mask long numbers, keeping 2 leading and 3 trailing digits.

    >>> mask_numbers("lookup 12.345.678-5 from +56987654321, took 12 ms")
    'lookup 12****785 from +5****321, took 12 ms'
    """

    def repl(match: re.Match[str]) -> str:
        digits = re.sub(r"[^\dkK+]", "", match.group(1))
        if sum(ch.isdigit() for ch in digits) < 7:
            return match.group(1)
        return f"{digits[:2]}****{digits[-3:]}"

    return _LONG_NUMBER.sub(repl, text)


class MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_numbers(record.getMessage())
        record.args = None
        return True


class MaskingFormatter(logging.Formatter):
    """Tracebacks are masked too: an exception's message may quote the input that caused it."""

    def formatException(self, ei) -> str:  # type: ignore[no-untyped-def]
        return mask_numbers(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return mask_numbers(super().formatStack(stack_info))


class JournalFormatter(MaskingFormatter):
    """Prefix ``<N>`` so journald stores the right priority; no timestamp (journald adds it)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_PRIORITY.get(record.levelno, 6)}>{record.name}: {super().format(record)}"


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM") or os.environ.get("INVOCATION_ID"):
        handler.setFormatter(JournalFormatter("%(message)s"))
    else:
        handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
