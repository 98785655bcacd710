"""Simulated card reader (``devices.simulated = true`` only: this router is not mounted otherwise).

``POST /v1/simulated/swipes`` ``{"card": "6037990000001234", "reader": "simulated"}`` feeds one
line to the swipe sessions exactly as a serial or wedge reader would (a card number, a hex UID
or an ISO 7813 track), so a POS integrator can try swipe -> PIN -> sale with ``make run``.
``loyalty-agent simulate swipe CARD`` calls it.
"""
from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from agent.api.deps import get_station
from agent.api.problems import problem_responses
from agent.api.routes_cards import get_sessions
from agent.cards.lines import parse_reader_line
from agent.cards.sessions import SwipeSessions
from agent.cards.track import TrackError
from agent.errors import AgentError
from agent.station import Station

router = APIRouter(prefix="/v1/simulated", tags=["simulated"])


class SimulatedSwipe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card: str = Field(min_length=1, max_length=200, examples=["6037990000001234"],
                      description="What the reader would send: a card number, a hex UID or a track")
    reader: str = Field("simulated", min_length=1, max_length=64,
                        description="Reader name (mapped to a POS by `cards.pos_for_reader`)")


@router.post("/swipes", status_code=201, summary="Simulated mode only: a card passed on a simulated reader",
             responses=problem_responses({404: "Card not in the directory (`card_unknown`): refused at the swipe",
                                          409: "Card blocked, replaced or unassigned: refused at the swipe",
                                          422: "Not a card number, UID or track (`card_line_malformed`, ...)",
                                          503: "Card readers not enabled (`card_readers_disabled`)"}))
def simulated_swipe(body: SimulatedSwipe, sessions: SwipeSessions = Depends(get_sessions),
                    station: Station = Depends(get_station)) -> JSONResponse:
    try:
        card = parse_reader_line(body.card, station.settings.cards.lines)
    except TrackError as exc:
        sessions.failed(body.reader, exc)  # the POS at that reader sees it, as with a real reader
        raise AgentError(exc.code, exc.es, exc.en, status=422, field="card") from None
    session = sessions.open(card_id=card.card_id, source="simulated", reader=body.reader, card_type=card.card_type)
    if session is None:  # a card that cannot buy (unknown, blocked): refused at the swipe, as on a real reader
        refusal = sessions.card_gate(card.card_id) if sessions.card_gate is not None else None
        raise refusal or AgentError("swipe_refused", "La tarjeta fue rechazada.", "The card was refused.", status=409)
    return JSONResponse(session.public(), status_code=201)
