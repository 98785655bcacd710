"""Card swipe routes (thin over ``agent.cards.sessions``).

- ``GET /v1/events``: swipe events for the POS. With ``Accept: text/event-stream`` it is a
  Server-Sent Events stream (``id:`` = seq, resumable with ``Last-Event-ID``, a ``: keep-alive``
  comment every 15 s). Otherwise it is a long poll: ``?after=<seq>&timeout=<s, max 30>`` returns
  ``{"epoch", "events": [...], "gap", "last_seq"}`` as soon as there is something newer.
  ``epoch`` changes when the agent restarts (sequence numbers restart): start over from 0.
  Both wait on the event loop, at most ``api.max_streams_per_client`` per token (429), and a
  revoked token's streams end (``agent.api.streams``).
- ``GET /v1/swipes/{id}``: the swipe session.
- ``POST /v1/swipes/{id}/pin`` ``{"attendant_id", "pin"}``: authorize the swipe. 200 with the
  session; 403 ``attendant_pin_invalid`` (unknown attendant or wrong PIN, indistinguishable);
  423 ``attendant_locked_out`` with ``retry_after_s``; 404 ``swipe_session_not_found``.
Sales and redemptions reference ``swipe_session_id`` and call
``require_authorized_session`` (403 otherwise).
Station: ``station.swipe_sessions`` is the ``SwipeSessions`` instance.
"""
from __future__ import annotations

from functools import partial

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agent.api.deps import get_station, require_client
from agent.api.limits import AsyncSlots, FailuresPerClient, pos_pin_paused
from agent.api.problems import problem_responses
from agent.api.streams import MAX_SEQ, StreamRegistry, TrackedStream, event_json, parse_last_event_id, sse
from agent.cards.pins import busy as pins_busy
from agent.cards.events import EventHub
from agent.cards.sessions import SwipeSessions
from agent.errors import AgentError
from agent.station import Station
from agent.tokens import Client

router = APIRouter(prefix="/v1", tags=["cards"])

# What each route's own code raises; 401 (token), 400/413 (body) and the parameters' 422 are
# added by agent/api/openapi.py.
_DISABLED = problem_responses({503: "Card readers not enabled on this agent (`card_readers_disabled`)"})
_NOT_FOUND = problem_responses({404: "No such swipe, or it expired: swipe again (`swipe_session_not_found`)"})
_EVENTS_200 = {200: {
    "description": "Long poll: `{\"epoch\", \"events\", \"gap\", \"last_seq\"}`. With `Accept: text/event-stream`: "
                   "a Server-Sent Events stream (`id:` = seq, resumable with `Last-Event-ID`, `: keep-alive` "
                   "every 15 s)",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}}


def get_sessions(station: Station = Depends(get_station)) -> SwipeSessions:
    sessions = station.swipe_sessions
    if sessions is None:
        raise AgentError("card_readers_disabled", "Los lectores de tarjetas no están habilitados en este agente.",
                         "Card readers are not enabled on this agent.", status=503)
    return sessions


def get_event_hub(station: Station = Depends(get_station)) -> EventHub:
    """The POS event stream: swipes, and the hand-held ID scanners' reads (``idcard.scanned``),
    which a station may have without any card reader."""
    if station.swipe_sessions is None and station.idcard_scanners is not None:
        return station.cards.hub
    return get_sessions(station).hub


class PinBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attendant_id: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$",
                              description="Letters, digits, `-` and `_`, up to 32")
    pin: str = Field(min_length=1, max_length=16, repr=False)  # repr=False: never in logs/tracebacks


@router.get("/events", summary="Swipe events (SSE or long poll)",
            responses={**_EVENTS_200, **_DISABLED, **problem_responses({
                400: "`Last-Event-ID` is not an event sequence number (`invalid_last_event_id`)",
                429: "This token already has `api.max_streams_per_client` streams or long polls open "
                     "(`too_many_streams`)",
            })})
async def events(
    request: Request,
    hub: EventHub = Depends(get_event_hub),
    client: Client = Depends(require_client),
    after: int = Query(0, ge=0, le=MAX_SEQ),
    timeout: float = Query(25.0, ge=0, le=30),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
    accept: str = Header("application/json"),
):
    registry: StreamRegistry = request.app.state.streams
    if "text/event-stream" in accept:
        start = parse_last_event_id(last_event_id) if last_event_id is not None else after
        release = registry.open(client.id)
        tokens = request.app.state.station.tokens
        return TrackedStream(sse(hub, start, lambda: tokens.is_active(client.id)), release,
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    release = registry.open(client.id)
    try:
        batch, gap = await hub.next_events(after, timeout)
    finally:
        release()
    return JSONResponse({"epoch": hub.epoch, "events": [event_json(e) for e in batch], "gap": gap,
                         "last_seq": hub.last_seq}, headers={"Cache-Control": "no-store"})


@router.get("/swipes/{session_id}", summary="A swipe session", responses={**_DISABLED, **_NOT_FOUND})
async def get_swipe(session_id: str, sessions: SwipeSessions = Depends(get_sessions)) -> dict:
    return sessions.get(session_id).public()


@router.post("/swipes/{session_id}/pin", summary="Authorize a swipe with the attendant's PIN",
             responses={**_NOT_FOUND, **problem_responses({
                 403: "Unknown attendant or wrong PIN, indistinguishable (`attendant_pin_invalid`)",
                 409: "This swipe is already authorized (`swipe_already_authorized`), a PIN is being checked "
                      "for it (`swipe_pin_in_progress`), or the card cannot buy (`card_blocked`, ...)",
                 423: "Too many wrong PINs: attendant locked for `retry_after_s` seconds (`attendant_locked_out`), "
                      "this POS token's PIN entries paused (`pos_pin_paused`: a third of the station's limit "
                      "within its window), or every PIN check at the station paused (`station_pin_paused`)",
                 503: "Card readers not enabled (`card_readers_disabled`), no valid attendant PINs installed "
                      "(`pin_bundle_missing`, `pin_bundle_expired`), or too many PIN checks at once "
                      "(`pin_checks_busy`, with `Retry-After`)",
             })})
async def authorize_swipe(session_id: str, body: PinBody, request: Request,
                          sessions: SwipeSessions = Depends(get_sessions),
                          client: Client = Depends(require_client)) -> dict:
    # argon2id takes ~50 ms and 19 MiB: off the event loop, and only a few at once; the others
    # wait here on the loop (not holding a worker thread) and get a 503 with Retry-After.
    failures = _failures_per_pos(request, sessions)
    wait_s = failures.retry_after_s(client.id)
    if wait_s is not None:
        raise pos_pin_paused(wait_s)
    slots: AsyncSlots = request.app.state.pin_slots
    if not await slots.acquire(sessions.pins.settings.check_wait_s):
        raise pins_busy()
    try:
        session = await anyio.to_thread.run_sync(
            partial(sessions.authorize, session_id, body.attendant_id, body.pin, pos=client.id))
    except AgentError as exc:
        if exc.code in _COUNTED_PER_POS:
            failures.record(client.id)
        raise
    finally:
        slots.release()
    return session.public()


# The failures the station counts toward its pause (a wrong PIN, an unknown or locked attendant).
_COUNTED_PER_POS = ("attendant_pin_invalid", "attendant_locked_out")


def _failures_per_pos(request: Request, sessions: SwipeSessions) -> FailuresPerClient:
    """One POS may use at most a third of the station's wrong-PIN allowance (``FailuresPerClient``)."""
    failures: FailuresPerClient | None = getattr(request.app.state, "pin_failures_per_pos", None)
    if failures is None:
        s = sessions.pins.settings
        failures = FailuresPerClient(max(1, s.station_max_failures // 3), s.station_window_s)
        request.app.state.pin_failures_per_pos = failures
    return failures
