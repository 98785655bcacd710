"""Swipe sessions: a card read opens a session, the attendant's PIN authorizes it, and sales and
redemptions must reference an authorized session (seed 002, "PIN Playero").

Lifecycle: ``pending`` (waiting for the PIN, ``session_ttl_s``) -> ``authorized`` (usable for
``authorized_ttl_s``) -> gone. Each step is published on the ``EventHub`` the POS listens to.

Sessions live in memory on purpose: they last minutes, and after an agent restart an
open swipe simply has to be repeated (the POS gets ``swipe_session_not_found`` and asks the
customer to swipe again); nothing half-authorized survives a crash. PIN failures and lockouts,
which must survive restarts, are persisted by ``AttendantPins``.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from agent.cards.events import EventHub
from agent.cards.pins import AttendantPins
from agent.errors import AgentError
from agent.ids import new_id


@dataclass(frozen=True)
class SwipeSession:
    id: str
    card_id: str  # UID (hex) for contactless cards, PAN for stripes
    source: str  # "pcsc" | "magstripe" | "serial"
    reader: str
    card_type: str
    created_at: float
    expires_at: float
    state: str = "pending"
    attendant_id: str | None = None
    pos: str | None = None  # the counter the reader sits at (``cards.pos_for_reader``)

    def public(self) -> dict[str, Any]:
        return {"session_id": self.id, "card_id": self.card_id, "source": self.source,
                "reader": self.reader, "pos": self.pos, "card_type": self.card_type, "state": self.state,
                "attendant_id": self.attendant_id,
                "expires_at": round(self.expires_at, 3)}


def _not_found() -> AgentError:
    return AgentError("swipe_session_not_found",
                      "La lectura de tarjeta no existe o ya venció. Pida al cliente que pase la tarjeta de nuevo.",
                      "The card swipe does not exist or has expired. Ask the customer to swipe again.",
                      status=404)


class SwipeSessions:
    def __init__(self, pins: AttendantPins, hub: EventHub, *, session_ttl_s: float = 120,
                 authorized_ttl_s: float = 300, now: Callable[[], float] = time.time,
                 pos_for_reader: Mapping[str, str] | None = None) -> None:
        self.pins = pins
        self.pos_for_reader = dict(pos_for_reader or {})
        self.hub = hub
        self.session_ttl_s = session_ttl_s
        self.authorized_ttl_s = authorized_ttl_s
        self._now = now
        self._sessions: dict[str, SwipeSession] = {}
        self._lock = threading.Lock()

    # ---- card side -------------------------------------------------------------------------
    def open(self, *, card_id: str, source: str, reader: str, card_type: str) -> SwipeSession:
        now = self._now()
        session = SwipeSession(new_id(), card_id, source, reader, card_type, now, now + self.session_ttl_s,
                               pos=self.pos_for_reader.get(reader))
        with self._lock:
            self._purge(now)
            self._sessions[session.id] = session
        self.hub.publish("swipe.created", session.public())
        return session

    def on_card_read(self, read: Any) -> SwipeSession:
        """Adapter for ``agent.drivers.pcsc_reader.CardRead``."""
        return self.open(card_id=read.uid, source="pcsc", reader=read.reader, card_type=str(read.card_type))

    def on_card_error(self, error: Any) -> None:
        """Adapter for ``CardReadError``: the POS shows the attendant why nothing happened."""
        self.failed(error.reader, error)

    def failed(self, reader: str, error: Any) -> None:
        """Tell the POS at that reader's counter why a card read gave nothing."""
        self.hub.publish("swipe.failed", {"reader": reader, "pos": self.pos_for_reader.get(reader), "code": error.code,
                                          "message_es": error.es, "message_en": error.en})

    def on_stripe(self, record: str, *, source: str = "magstripe", reader: str = "magstripe") -> SwipeSession | None:
        from agent.cards.track import TrackError, parse_swipe

        try:
            track = parse_swipe(record)
        except TrackError as exc:
            self.failed(reader, exc)
            return None
        return self.open(card_id=track.pan, source=source, reader=reader, card_type=f"track{track.track}")

    # ---- POS side --------------------------------------------------------------------------
    def get(self, session_id: str) -> SwipeSession:
        with self._lock:
            self._purge(self._now())
            session = self._sessions.get(session_id)
        if session is None:
            raise _not_found()
        return session

    def authorize(self, session_id: str, attendant_id: str, pin: str) -> SwipeSession:
        session = self.get(session_id)
        if session.state != "pending":
            raise AgentError("swipe_already_authorized", "Esta lectura de tarjeta ya fue autorizada.",
                             "This card swipe is already authorized.", status=409)
        try:
            self.pins.verify(attendant_id, pin)  # raises 403/423; ~45 ms of argon2id
        except AgentError as exc:
            self.hub.publish("swipe.pin_rejected", {"session_id": session_id, "code": exc.code})
            raise
        now = self._now()
        with self._lock:
            current = self._sessions.get(session_id)
            if current is None or current.expires_at <= now:
                raise _not_found()
            if current.state != "pending":
                raise AgentError("swipe_already_authorized", "Esta lectura de tarjeta ya fue autorizada.",
                                 "This card swipe is already authorized.", status=409)
            session = replace(current, state="authorized", attendant_id=attendant_id,
                              expires_at=now + self.authorized_ttl_s)
            self._sessions[session_id] = session
        self.hub.publish("swipe.authorized", session.public())
        return session

    def require_authorized_session(self, session_id: str | None) -> SwipeSession:
        """For sales and redemptions: the swipe must exist, be authorized and not expired."""
        if not session_id:
            raise AgentError("swipe_session_required",
                             "Falta la autorización del playero: pase la tarjeta e ingrese el PIN.",
                             "Attendant authorization missing: swipe the card and enter the PIN.",
                             status=403, field="swipe_session_id")
        try:
            session = self.get(session_id)
        except AgentError:
            raise AgentError("swipe_session_not_authorized",
                             "La lectura de tarjeta no está autorizada o ya venció: pase la tarjeta e ingrese el PIN de nuevo.",
                             "The card swipe is not authorized or has expired: swipe the card and enter the PIN again.",
                             status=403, field="swipe_session_id") from None
        if session.state != "authorized":
            raise AgentError("swipe_session_not_authorized",
                             "Falta el PIN del playero para esta lectura de tarjeta.",
                             "The attendant PIN has not been entered for this card swipe.",
                             status=403, field="swipe_session_id")
        return session

    def close(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _purge(self, now: float) -> None:
        expired = [sid for sid, s in self._sessions.items() if s.expires_at <= now]
        for sid in expired:
            del self._sessions[sid]
