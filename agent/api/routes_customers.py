"""Customer routes: the contract POS vendors code against (see docs/api.md)."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from agent.api.deps import actor, get_station, require_client
from agent.api.idempotency import IDEMPOTENCY_KEY, check_key, created, fingerprint
from agent.api.problems import problem_responses
from agent.customers.models import ChangeList, Customer, CustomerCreate, CustomerPatch, SearchResult
from agent.errors import AgentError
from agent.station import Station
from agent.tokens import Client

router = APIRouter(prefix="/v1/customers", tags=["customers"])

# 401 (token) and, on routes with a body, 400 (malformed JSON, bad header) and 413 are added by
# agent/api/openapi.py; the 422 of a route with parameters is FastAPI's, made a Problem there too.
_READ = problem_responses({422: "Invalid parameter (per-field errors)"})
_WRITE = problem_responses({507: "Sync queue full (disk budget): nothing was stored (`outbox_full`)"})
_NOT_FOUND = problem_responses({404: "No such customer (`customer_not_found`)"})
_LOCATION = {"Location": {"description": "The new customer: `/v1/customers/{id}`", "schema": {"type": "string"}}}


@router.post("", status_code=201, response_model=Customer, summary="Enroll a customer",
             responses={**_WRITE,
                        **created("The new customer (or, with `Idempotent-Replayed`, the stored first answer)",
                                  _LOCATION),
                        **problem_responses({
                            409: "Document (`customer_exists`) or loyalty id (`loyalty_id_taken`) already "
                                 "registered; `customer_id` names that customer",
                            422: "Validation failed (per-field errors), or `idempotency_key_reused`"})})
async def create_customer(
    request: Request,
    body: CustomerCreate,
    station: Station = Depends(get_station),
    client: Client = Depends(require_client),
    who: str = Depends(actor),
    idempotency_key: str | None = IDEMPOTENCY_KEY,
) -> JSONResponse:
    # The key's fingerprint is the parsed body, not its bytes: a POS that re-serializes its retry
    # (other key order, other spacing) gets the replay, not "key reused".
    print_ = ""
    if idempotency_key is not None:
        check_key(idempotency_key)
        print_ = fingerprint("POST", request.url.path, body.model_dump_json().encode())
    # Keys are scoped per API client (the client's name is the scope).
    payload, replayed = await run_in_threadpool(
        lambda: station.customers.create_json(body, who, scope=client.name, key=idempotency_key, fingerprint=print_))
    headers = {"Location": f"/v1/customers/{payload['id']}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(payload, status_code=201, headers=headers)


class CustomerOnScreen(Customer):
    """A customer as the sale screen needs them (seed 000): the stored record plus loyalty views."""

    display: dict[str, Any] | None = Field(None, description=(
        "Document lookup: the sale-screen summary (display name, document as printed, tier, balance or "
        "`masked`, consents to ratify, messages for the holder); the same shape as the swipe and account views"))
    accounts: list[dict[str, Any]] | None = Field(None, description=(
        "GET by id: the customer's loyalty accounts (the first is the primary one) with their cards, masked"))


@router.get("", response_model=CustomerOnScreen, summary="Look a customer up by document",
            responses={**_READ, **problem_responses({404: "No customer with that document (`customer_not_found`)"})})
async def lookup_customer(
    document_country: str = Query(..., min_length=2, max_length=2, examples=["CL"]),
    document_type: str = Query(..., min_length=1, max_length=16, examples=["RUT"]),
    document_number: str = Query(..., min_length=1, max_length=40, examples=["12.345.678-5"]),
    station: Station = Depends(get_station),
    _: Client = Depends(require_client),
) -> JSONResponse:
    # Hot path (every sale): an indexed read of pre-serialized JSON, run on the event loop
    # and returned without a second pydantic pass; response_model still documents it.
    found = station.customers.find_by_document_json(document_country, document_type, document_number)
    loyalty = station.loyalty
    if loyalty is not None:
        found["display"] = loyalty.customer_display(found["id"])
    return JSONResponse(found)


@router.get("/search", response_model=SearchResult, summary="Search by name, document or loyalty id",
            responses=_READ)
async def search_customers(
    q: str = Query(..., min_length=1, max_length=100),
    limit: int = Query(20, ge=1, le=100),
    station: Station = Depends(get_station),
    _: Client = Depends(require_client),
) -> JSONResponse:
    # Where the store is small enough for every search to cost about a millisecond, it runs on
    # the event loop like the document lookup: a worker thread waited for the GIL behind the
    # other requests' work (p99 41 ms at 8 POS vs 11 ms on the loop, bench concurrency). A big
    # store's short-prefix searches take tens of ms and go to a worker thread. Summaries come
    # from the stored canonical JSON (no response-model pass).
    customers = station.customers
    if customers.search_is_cheap():
        items = customers.search_json(q, limit)
    else:
        items = await run_in_threadpool(customers.search_json, q, limit)
    return JSONResponse({"items": items})


@router.get("/{customer_id}", response_model=CustomerOnScreen, summary="Get a customer, with accounts and cards",
            responses={**_READ, **_NOT_FOUND})
async def get_customer(customer_id: str, station: Station = Depends(get_station),
                       _: Client = Depends(require_client)) -> JSONResponse:
    found = station.customers.get_json(customer_id)
    loyalty = station.loyalty
    if loyalty is not None:
        found["accounts"] = loyalty.customer_accounts(customer_id)
    return JSONResponse(found)


@router.patch("/{customer_id}", response_model=Customer, summary="Update some fields of a customer",
              responses={**_WRITE, **_NOT_FOUND, **problem_responses({
                  409: "The new document (`customer_exists`) or loyalty id (`loyalty_id_taken`) belongs to "
                       "another customer, named by `customer_id`",
                  422: "Validation failed (per-field errors)"})})
def update_customer(customer_id: str, body: CustomerPatch, station: Station = Depends(get_station),
                    who: str = Depends(actor)) -> Customer:
    return station.customers.update(customer_id, body, who)


@router.get("/{customer_id}/changes", response_model=ChangeList, summary="Change history by week, month or range",
            responses={**_READ, **_NOT_FOUND})
def customer_changes(
    customer_id: str,
    period: Literal["week", "month"] | None = Query(None, description="Calendar week (Monday first) or month, station time zone"),
    day: date | None = Query(None, alias="date", description="A day inside the wanted week/month (default today)"),
    from_: str | None = Query(None, alias="from", max_length=40, examples=["2026-03-01"],
                              description="A date (that day's start) or an ISO 8601 date-time"),
    to: str | None = Query(None, max_length=40, examples=["2026-03-31"],
                           description="A date (the end of that day, included) or an ISO 8601 date-time (excluded)"),
    station: Station = Depends(get_station),
    _: Client = Depends(require_client),
) -> ChangeList:
    zone = ZoneInfo(station.settings.station.timezone)
    if from_ is not None or to is not None:
        if from_ is None or to is None:
            raise AgentError("invalid_range", "Indique ambos parámetros from y to.", "Give both from and to.",
                             status=422, field="from" if from_ is None else "to")
        if period is not None or day is not None:
            raise AgentError("invalid_range", "Use period (y date) o bien from y to, no ambos.",
                             "Use period (and date) or from and to, not both.", status=422, field="period")
        start, end = _bound(from_, "from", zone), _bound(to, "to", zone, end=True)
        if end <= start:
            raise AgentError("invalid_range", "La fecha final debe ser posterior a la inicial.",
                             "The end must be after the start.", status=422, field="to")
    else:
        try:
            start, end = station.customers.period_bounds(period or "week", day)
        except (OverflowError, ValueError):  # date=9999-12-31: the period ends after year 9999
            raise AgentError("invalid_date", "Fecha fuera del rango admitido.", "Date out of the supported range.",
                             status=422, field="date") from None
    items = station.customers.changes(customer_id, start, end)
    return ChangeList(customer_id=customer_id, from_=start, to=end, items=items)


def _bound(text: str, name: str, zone: ZoneInfo, end: bool = False) -> datetime:
    """A date (``2026-03-31`` or ``20260331``; as ``to`` it includes that whole day) or an ISO
    8601 date-time, in the station's time zone when it carries no offset; returned in UTC."""
    try:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            value = datetime.fromisoformat(text)
            value = value if value.tzinfo else value.replace(tzinfo=zone)
        else:
            value = datetime.combine(date.fromordinal(day.toordinal() + (1 if end else 0)), time(), zone)
        return value.astimezone(timezone.utc)  # overflows here, not later, at the edges of year 1 or 9999
    except (ValueError, OverflowError):
        raise AgentError("invalid_date", f"{name}: use una fecha AAAA-MM-DD o fecha y hora ISO 8601.",
                         f"{name}: use a YYYY-MM-DD date or an ISO 8601 date-time.", status=422, field=name) from None
