"""Loyalty domain errors: the core's ``AgentError`` with a stable code and both languages."""
from __future__ import annotations

from agent.errors import AgentError


class LoyaltyError(AgentError):
    """Any refused loyalty operation; nothing was booked when this is raised."""


def not_found(code: str, es: str, en: str, field: str | None = None) -> LoyaltyError:
    return LoyaltyError(code, es, en, status=404, field=field)


def conflict(code: str, es: str, en: str, field: str | None = None) -> LoyaltyError:
    return LoyaltyError(code, es, en, status=409, field=field)
