"""Card swipe routes (thin over ``agent.cards.sessions``).

- ``GET /v1/events``: swipe events for the POS. With ``Accept: text/event-stream`` it is a
  Server-Sent Events stream (``id:`` = seq, resumable with ``Last-Event-ID``, a ``: keep-alive``
  comment every 15 s). Otherwise it is a long poll: ``?after=<seq>&timeout=<s, max 30>`` returns
  ``{"epoch", "events": [...], "gap", "last_seq"}`` as soon as there is something newer.
  ``epoch`` changes when the agent restarts (sequence numbers restart): start over from 0.
- ``GET /v1/swipes/{id}``: the swipe session.
- ``POST /v1/swipes/{id}/pin`` ``{"attendant_id", "pin"}``: authorize the swipe. 200 with the
  session; 403 ``attendant_pin_invalid`` (unknown attendant or wrong PIN, indistinguishable);
  423 ``attendant_locked_out`` with ``retry_after_s``; 404 ``swipe_session_not_found``.
Sales and redemptions reference ``swipe_session_id`` and call
``require_authorized_session`` (403 otherwise).
Station: ``station.swipe_sessions`` is the ``SwipeSessions`` instance.
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agent.api.deps import get_station
from agent.api.problems import problem_responses
from agent.cards.events import Event
from agent.cards.sessions import SwipeSessions
from agent.errors import AgentError
from agent.station import Station

router = APIRouter(prefix="/v1", tags=["cards"])
KEEPALIVE_S = 15.0

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


class PinBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attendant_id: str = Field(min_length=1, max_length=32)
    pin: str = Field(min_length=1, max_length=16, repr=False)  # repr=False: never in logs/tracebacks


def _event_json(event: Event) -> dict:
    return {"seq": event.seq, "type": event.type, "data": event.data, "at": event.at}


@router.get("/events", summary="Swipe events (SSE or long poll)", responses={**_EVENTS_200, **_DISABLED})
async def events(
    request: Request,
    sessions: SwipeSessions = Depends(get_sessions),
    after: int = Query(0, ge=0),
    timeout: float = Query(25.0, ge=0, le=30),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
    accept: str = Header("application/json"),
):
    hub = sessions.hub
    if "text/event-stream" in accept:
        start = int(last_event_id) if last_event_id and last_event_id.isdigit() else after

        async def stream() -> AsyncIterator[str]:
            cursor = start
            yield f"retry: 2000\nevent: hello\ndata: {json.dumps({'epoch': hub.epoch, 'last_seq': hub.last_seq})}\n\n"
            while not await request.is_disconnected():
                batch, _gap = await anyio.to_thread.run_sync(hub.wait, cursor, KEEPALIVE_S)
                if not batch:
                    yield ": keep-alive\n\n"
                    continue
                for event in batch:
                    cursor = event.seq
                    yield f"id: {event.seq}\nevent: {event.type}\ndata: {json.dumps(_event_json(event))}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    batch, gap = await anyio.to_thread.run_sync(hub.wait, after, timeout)
    return JSONResponse({"epoch": hub.epoch, "events": [_event_json(e) for e in batch], "gap": gap,
                         "last_seq": hub.last_seq}, headers={"Cache-Control": "no-store"})


@router.get("/swipes/{session_id}", summary="A swipe session", responses={**_DISABLED, **_NOT_FOUND})
async def get_swipe(session_id: str, sessions: SwipeSessions = Depends(get_sessions)) -> dict:
    return sessions.get(session_id).public()


@router.post("/swipes/{session_id}/pin", summary="Authorize a swipe with the attendant's PIN",
             responses={**_NOT_FOUND, **problem_responses({
                 403: "Unknown attendant or wrong PIN, indistinguishable (`attendant_pin_invalid`)",
                 409: "This swipe is already authorized (`swipe_already_authorized`)",
                 423: "Too many wrong PINs: attendant locked for `retry_after_s` seconds (`attendant_locked_out`)",
                 503: "Card readers not enabled (`card_readers_disabled`), or no valid attendant PINs installed "
                      "(`pin_bundle_missing`, `pin_bundle_expired`)",
             })})
async def authorize_swipe(session_id: str, body: PinBody, sessions: SwipeSessions = Depends(get_sessions)) -> dict:
    # argon2id takes ~50 ms: keep it off the event loop.
    session = await anyio.to_thread.run_sync(sessions.authorize, session_id, body.attendant_id, body.pin)
    return session.public()
