"""Swipe sessions: a card read opens a session, the attendant's PIN authorizes it, and sales and
redemptions must reference an authorized session (seed 002, "PIN Playero").

Lifecycle: ``pending`` (waiting for the PIN, ``session_ttl_s``) -> ``authorized`` (usable for
``authorized_ttl_s``) -> gone. Each step is published on the ``EventHub`` the POS listens to.

One PIN entry authorizes one operation: an authorized swipe is good for ``authorized_uses``
sales or redemptions (default 1), only from the POS token that entered the PIN (``pos``); a
sale takes a use with ``use()`` and gives it back if nothing was booked. A blocked or replaced
card is refused at the swipe, before the PIN prompt (``swipe.refused``); an unknown or unassigned
one gets a session marked ``card_status`` (so the POS can issue it) and its PIN is refused,
without a PIN check, until it is issued. ``pin_attempts_per_swipe`` wrong PINs close the swipe; one PIN check
at a time per swipe, so parallel guesses cannot pass the count.

Sessions live in memory on purpose: they last minutes, and after an agent restart an
open swipe simply has to be repeated (the POS gets ``swipe_session_not_found`` and asks the
customer to swipe again); nothing half-authorized survives a crash. PIN failures and lockouts,
which must survive restarts, are persisted by ``AttendantPins``.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
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
    pos: str | None = None  # the API client (token id) that entered the PIN
    uses_left: int = 0
    wrong_pins: int = 0
    card_status: str = "issued"  # issued | unknown | unassigned (from the loyalty directory)
    reader_pos: str | None = None  # the counter the reader sits at (``cards.pos_for_reader``)

    def public(self) -> dict[str, Any]:
        return {"session_id": self.id, "card_id": self.card_id, "source": self.source,
                "reader": self.reader, "reader_pos": self.reader_pos, "card_type": self.card_type,
                "state": self.state, "attendant_id": self.attendant_id, "uses_left": self.uses_left,
                "card_status": self.card_status,
                "expires_at": round(self.expires_at, 3)}


# Why a card cannot be used for a sale (AgentError), or None; set by the loyalty feature.
CardGate = Callable[[str], AgentError | None]
# Refused at the swipe: these cards can never buy. Unknown or unassigned cards may be issued at
# the counter first, so they get a session (and the PIN is refused until they are issued).
NEVER_USABLE = frozenset({"card_blocked", "card_replaced"})
LOCAL_POS = "local"  # callers inside the agent process (CLI, tests) that have no API token


def _not_authorized(es: str, en: str, code: str = "swipe_session_not_authorized") -> AgentError:
    return AgentError(code, es, en, status=403, field="swipe_session_id")


def _not_found() -> AgentError:
    return AgentError("swipe_session_not_found",
                      "La lectura de tarjeta no existe o ya venció. Pida al cliente que pase la tarjeta de nuevo.",
                      "The card swipe does not exist or has expired. Ask the customer to swipe again.",
                      status=404)


class SwipeSessions:
    def __init__(self, pins: AttendantPins, hub: EventHub, *, session_ttl_s: float = 120,
                 authorized_ttl_s: float = 300, authorized_uses: int = 1, pin_attempts_per_swipe: int = 3,
                 card_gate: CardGate | None = None, now: Callable[[], float] = time.time,
                 pos_for_reader: Mapping[str, str] | None = None) -> None:
        self.pins = pins
        self.pos_for_reader = dict(pos_for_reader or {})
        self.hub = hub
        self.session_ttl_s = session_ttl_s
        self.authorized_ttl_s = authorized_ttl_s
        self.authorized_uses = authorized_uses
        self.pin_attempts_per_swipe = pin_attempts_per_swipe
        self.card_gate = card_gate
        self._now = now
        self._sessions: dict[str, SwipeSession] = {}
        self._checking: set[str] = set()  # swipes with a PIN check in progress
        self._lock = threading.RLock()  # use() checks the session under the same lock

    # ---- card side -------------------------------------------------------------------------
    def open(self, *, card_id: str, source: str, reader: str, card_type: str) -> SwipeSession | None:
        refusal = self.card_gate(card_id) if self.card_gate is not None else None
        if refusal is not None and refusal.code in NEVER_USABLE:
            # No session, so no PIN prompt: the attendant sees why at once.
            self.hub.publish("swipe.refused", {"card_id": card_id, "source": source, "reader": reader,
                                               "reader_pos": self.pos_for_reader.get(reader), "code": refusal.code,
                                               "message_es": refusal.es,
                                               "message_en": refusal.en})
            return None
        now = self._now()
        # A card not issued yet (new stock) gets a session so the POS can issue it, but says so
        # (``card_status``): the POS offers "issue card", not the PIN, which is refused until then.
        status = "issued" if refusal is None else refusal.code.removeprefix("card_")
        session = SwipeSession(new_id(), card_id, source, reader, card_type, now, now + self.session_ttl_s,
                               card_status=status, reader_pos=self.pos_for_reader.get(reader))
        with self._lock:
            self._purge(now)
            self._sessions[session.id] = session
        self.hub.publish("swipe.created", session.public())
        return session

    def on_card_read(self, read: Any) -> SwipeSession | None:
        """Adapter for ``agent.drivers.pcsc_reader.CardRead``."""
        return self.open(card_id=read.uid, source="pcsc", reader=read.reader, card_type=str(read.card_type))

    def on_card_error(self, error: Any) -> None:
        """Adapter for ``CardReadError``: the POS shows the attendant why nothing happened."""
        self.failed(error.reader, error)

    def failed(self, reader: str, error: Any) -> None:
        """Tell the POS at that reader's counter why a card read gave nothing."""
        self.hub.publish("swipe.failed", {"reader": reader, "reader_pos": self.pos_for_reader.get(reader),
                                          "code": error.code, "message_es": error.es, "message_en": error.en})

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

    def authorize(self, session_id: str, attendant_id: str, pin: str, *, pos: str = LOCAL_POS) -> SwipeSession:
        """Check the PIN and authorize the swipe for ``authorized_uses`` operations by ``pos``."""
        session = self._begin_pin_check(session_id)
        try:
            refusal = self.card_gate(session.card_id) if self.card_gate is not None else None
            if refusal is not None:  # not issued, or blocked since the swipe: no PIN check for it
                if refusal.code in NEVER_USABLE:
                    self.close(session_id)
                raise refusal
            try:
                self.pins.verify(attendant_id, pin)  # raises 403/423/503; ~45 ms of argon2id
            except AgentError as exc:
                self.hub.publish("swipe.pin_rejected", {"session_id": session_id, "code": exc.code})
                if exc.code in ("attendant_pin_invalid", "attendant_locked_out"):
                    self._count_wrong_pin(session_id)
                raise
            return self._mark_authorized(session_id, attendant_id, pos)
        finally:
            with self._lock:
                self._checking.discard(session_id)

    def _begin_pin_check(self, session_id: str) -> SwipeSession:
        with self._lock:
            self._purge(self._now())
            session = self._sessions.get(session_id)
            if session is None:
                raise _not_found()
            if session.state != "pending":
                raise AgentError("swipe_already_authorized", "Esta lectura de tarjeta ya fue autorizada.",
                                 "This card swipe is already authorized.", status=409)
            if session_id in self._checking:
                raise AgentError("swipe_pin_in_progress",
                                 "Ya se está verificando un PIN para esta lectura de tarjeta.",
                                 "A PIN is already being checked for this card swipe.", status=409)
            self._checking.add(session_id)
            return session

    def _count_wrong_pin(self, session_id: str) -> None:
        with self._lock:
            current = self._sessions.get(session_id)
            if current is None:
                return
            wrong = current.wrong_pins + 1
            if wrong < self.pin_attempts_per_swipe:
                self._sessions[session_id] = replace(current, wrong_pins=wrong)
                return
            del self._sessions[session_id]
        self.hub.publish("swipe.closed", {"session_id": session_id, "code": "swipe_pin_attempts_exceeded"})

    def _mark_authorized(self, session_id: str, attendant_id: str, pos: str) -> SwipeSession:
        now = self._now()
        with self._lock:
            current = self._sessions.get(session_id)
            if current is None or current.expires_at <= now:
                raise _not_found()
            session = replace(current, state="authorized", attendant_id=attendant_id, pos=pos,
                              uses_left=self.authorized_uses, expires_at=now + self.authorized_ttl_s)
            self._sessions[session_id] = session
        self.hub.publish("swipe.authorized", session.public())
        return session

    def require_authorized_session(self, session_id: str | None, pos: str = LOCAL_POS) -> SwipeSession:
        """For reads tied to a swipe (balance, simulate): authorized, not expired, same POS."""
        if not session_id:
            raise _not_authorized("Falta la autorización del playero: pase la tarjeta e ingrese el PIN.",
                                  "Attendant authorization missing: swipe the card and enter the PIN.",
                                  "swipe_session_required")
        try:
            session = self.get(session_id)
        except AgentError:
            raise _not_authorized(
                "La lectura de tarjeta no está autorizada o ya venció: pase la tarjeta e ingrese el PIN de nuevo.",
                "The card swipe is not authorized or has expired: swipe the card and enter the PIN again.") from None
        if session.state != "authorized":
            raise _not_authorized("Falta el PIN del playero para esta lectura de tarjeta.",
                                  "The attendant PIN has not been entered for this card swipe.")
        if session.pos != pos:
            raise _not_authorized("El PIN de esta lectura de tarjeta se ingresó en otro punto de venta.",
                                  "The PIN for this card swipe was entered at another point of sale.",
                                  "swipe_session_other_pos")
        return session

    @contextmanager
    def use(self, session_id: str | None, pos: str = LOCAL_POS) -> Iterator[SwipeSession]:
        """Take one of the swipe's authorized operations for a sale or redemption.

        The use is spent only if the block finishes without an exception (something was
        booked); otherwise it is given back, so a refused sale does not cost a PIN entry."""
        with self._lock:
            session = self.require_authorized_session(session_id, pos)
            if session.uses_left <= 0:
                raise _not_authorized(
                    "La autorización de esta lectura de tarjeta ya se usó: pase la tarjeta e ingrese el PIN de nuevo.",
                    "This card swipe's authorization was already used: swipe the card and enter the PIN again.",
                    "swipe_authorization_used")
            self._sessions[session.id] = replace(session, uses_left=session.uses_left - 1)
        try:
            yield session
        except BaseException:
            self.give_back(session.id)
            raise

    def give_back(self, session_id: str) -> None:
        """Return a use taken by ``use()`` when nothing was booked after all (an idempotent replay)."""
        with self._lock:
            current = self._sessions.get(session_id)
            if current is not None:
                self._sessions[session_id] = replace(current, uses_left=current.uses_left + 1)

    def close(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def _purge(self, now: float) -> None:
        expired = [sid for sid, s in self._sessions.items() if s.expires_at <= now]
        for sid in expired:
            del self._sessions[sid]
