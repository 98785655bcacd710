"""Printable documents (seed 002: "visualizar e imprimir"): the last 30 movements, a redemption
voucher and a scheduled reward's warehouse slip.

``GET`` answers the document as plain text (``text/plain; charset=utf-8``, ``printer.width``
columns) for a POS that prints itself; ``POST .../print`` prints it on the station's ESC/POS
printer: ``503 printer_offline`` when it does not answer (the sale or redemption stays booked)
and ``503 printer_not_configured`` when the station has none.
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from agent.api.deps import get_station, require_client
from agent.api.problems import problem_responses
from agent.api.routes_loyalty import get_loyalty
from agent.errors import AgentError
from agent.loyalty.service import LoyaltyService
from agent.printing.documents import PrintDocument, movements_document, slip_document, voucher_document
from agent.station import Station
from agent.tokens import Client

router = APIRouter(prefix="/v1/documents", tags=["printing"])

_TEXT = {200: {"description": "The document as plain text", "content": {"text/plain": {"schema": {"type": "string"}}}}}
_PRINTED = problem_responses({503: "No printer configured (`printer_not_configured`), or it does not answer "
                                   "(`printer_offline`): the operation itself stays booked"})


def _now(station: Station) -> str:
    return datetime.now(ZoneInfo(station.settings.station.timezone)).strftime("%Y-%m-%d %H:%M")


def _movements(station: Station, loyalty: LoyaltyService, account_id: str, session_id: str | None,
               pos: str) -> PrintDocument:
    moves = loyalty.movements(account_id, session_id, pos=pos)  # 404 / 403 (fleet vehicle card) as the JSON route
    account = loyalty.account(account_id, session_id, pos=pos)
    return movements_document(station=station.settings.station.id, account_id=account_id, balance=account["balance"],
                              movements=moves["movements"], printed_at=_now(station), width=station.settings.printer.width)


def _voucher(station: Station, loyalty: LoyaltyService, redemption_id: str) -> PrintDocument:
    redemption = loyalty.redemption(redemption_id)
    return voucher_document(station=station.settings.station.id, redemption=redemption,
                            reward_name=redemption["reward_name"], printed_at=_now(station),
                            width=station.settings.printer.width)


def _slip(station: Station, loyalty: LoyaltyService, redemption_id: str) -> PrintDocument:
    request = loyalty.reward_request(redemption_id)
    return slip_document(slip=request["slip"], printed_at=_now(station), width=station.settings.printer.width)


def _text(station: Station, document: PrintDocument) -> PlainTextResponse:
    return PlainTextResponse(document.as_text(station.settings.printer.width))


async def _print(station: Station, document: PrintDocument) -> dict:
    if station.printer is None:
        raise AgentError("printer_not_configured", "Esta estación no tiene impresora configurada ([printer]).",
                         "This station has no printer configured ([printer]).", status=503)
    await run_in_threadpool(station.printer.print, document)
    return {"printed": True, "document": document.kind, "lines": len(document.lines)}


_SESSION = Query(None, max_length=64, description="A fleet vehicle card's session cannot see the points (403)")


@router.get("/movements/{account_id}", response_class=PlainTextResponse, summary="Last 30 movements, as text",
            responses={**_TEXT, **problem_responses({403: "Fleet vehicle card", 404: "Unknown account"})})
def movements_text(account_id: str, session_id: str | None = _SESSION, station: Station = Depends(get_station),
                   loyalty: LoyaltyService = Depends(get_loyalty),
                   client: Client = Depends(require_client)) -> PlainTextResponse:
    return _text(station, _movements(station, loyalty, account_id, session_id, client.id))


@router.post("/movements/{account_id}/print", summary="Print the last 30 movements on the station printer",
             responses={**_PRINTED, **problem_responses({403: "Fleet vehicle card", 404: "Unknown account"})})
async def movements_print(account_id: str, session_id: str | None = _SESSION, station: Station = Depends(get_station),
                          loyalty: LoyaltyService = Depends(get_loyalty),
                          client: Client = Depends(require_client)) -> dict:
    document = await run_in_threadpool(_movements, station, loyalty, account_id, session_id, client.id)
    return await _print(station, document)


@router.get("/redemptions/{redemption_id}", response_class=PlainTextResponse, summary="Redemption voucher, as text",
            responses={**_TEXT, **problem_responses({404: "Unknown redemption (`redemption_unknown`)"})})
def voucher_text(redemption_id: str, station: Station = Depends(get_station),
                 loyalty: LoyaltyService = Depends(get_loyalty)) -> PlainTextResponse:
    return _text(station, _voucher(station, loyalty, redemption_id))


@router.post("/redemptions/{redemption_id}/print", summary="Print a redemption voucher on the station printer",
             responses={**_PRINTED, **problem_responses({404: "Unknown redemption (`redemption_unknown`)"})})
async def voucher_print(redemption_id: str, station: Station = Depends(get_station),
                        loyalty: LoyaltyService = Depends(get_loyalty)) -> dict:
    return await _print(station, await run_in_threadpool(_voucher, station, loyalty, redemption_id))


@router.get("/reward-requests/{redemption_id}", response_class=PlainTextResponse,
            summary="A scheduled reward's warehouse slip, as text",
            responses={**_TEXT, **problem_responses({404: "No such scheduled request (`reward_request_unknown`)"})})
def slip_text(redemption_id: str, station: Station = Depends(get_station),
              loyalty: LoyaltyService = Depends(get_loyalty)) -> PlainTextResponse:
    return _text(station, _slip(station, loyalty, redemption_id))


@router.post("/reward-requests/{redemption_id}/print", summary="Print a scheduled reward's warehouse slip",
             responses={**_PRINTED, **problem_responses({404: "No such scheduled request (`reward_request_unknown`)"})})
async def slip_print(redemption_id: str, station: Station = Depends(get_station),
                     loyalty: LoyaltyService = Depends(get_loyalty)) -> dict:
    return await _print(station, await run_in_threadpool(_slip, station, loyalty, redemption_id))
