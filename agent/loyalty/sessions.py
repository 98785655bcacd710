"""What the loyalty service needs from the card-swipe / attendant-PIN feature (``agent.cards``).

Sales and redemptions require a swipe session that the attendant authorized with their PIN.
The cards feature provides ``require_authorized_session(session_id)``; this Protocol is the
contract, so loyalty does not import card-reader code and either side can be tested alone.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

LOCAL_POS = "local"  # same value as agent.cards.sessions.LOCAL_POS: a caller without an API token


class AuthorizedSwipe(Protocol):
    """Matches ``agent.cards.sessions.SwipeSession``: ``card_id`` is the card number we key on."""

    @property
    def id(self) -> str: ...

    @property
    def card_id(self) -> str: ...

    @property
    def attendant_id(self) -> str | None: ...


class SwipeSessionAuthority(Protocol):
    def require_authorized_session(self, session_id: str | None, pos: str = LOCAL_POS) -> AuthorizedSwipe:
        """Return the authorized session or raise an ``AgentError`` (unknown, expired, no PIN yet,
        PIN entered at another POS)."""
        ...

    def use(self, session_id: str | None, pos: str = LOCAL_POS) -> AbstractContextManager[AuthorizedSwipe]:
        """Spend one authorized operation (a sale or redemption) if the block books something."""
        ...

    def give_back(self, session_id: str) -> None:
        """Return a use after all (the booking turned out to be a replay)."""
        ...
