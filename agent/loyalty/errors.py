"""Loyalty domain errors: a stable ``code`` plus Spanish and English texts.

They subclass the core's ``agent.errors.AgentError`` when it exists; until it lands on
main the fallback below takes exactly the same arguments, so rebasing is a one-line change.
"""
from __future__ import annotations

try:  # the core's error type (RFC 9457 problem+json in the API)
    from agent.errors import AgentError as _Base
except ImportError:  # pragma: no cover - only before the core lands

    class _Base(Exception):  # type: ignore[no-redef]
        def __init__(self, code: str, es: str, en: str, *, status: int = 422, field: str | None = None):
            super().__init__(f"{code}: {en}")
            self.code = code
            self.message_es = es
            self.message_en = en
            self.status = status
            self.field = field


class LoyaltyError(_Base):
    """Any refused loyalty operation; nothing was booked when this is raised."""

    def __init__(self, code: str, es: str, en: str, *, status: int = 422, field: str | None = None):
        super().__init__(code, es, en, status=status, field=field)
        # Keep our own copies so callers can rely on them whatever the base stores.
        self.code = code
        self.message_es = es
        self.message_en = en
        self.status = status
        self.field = field


def not_found(code: str, es: str, en: str, field: str | None = None) -> LoyaltyError:
    return LoyaltyError(code, es, en, status=404, field=field)


def conflict(code: str, es: str, en: str, field: str | None = None) -> LoyaltyError:
    return LoyaltyError(code, es, en, status=409, field=field)
