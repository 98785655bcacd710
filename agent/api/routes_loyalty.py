"""Loyalty routes: sales (earn, simulate, return, void), accounts, rewards, loyalty cards.

Thin over ``agent.loyalty.service.LoyaltyService``. Idempotency-Key is handled by the service
in the same transaction as the booking (scoped per API client, so two POS cannot collide);
a replay answers with the stored body and ``Idempotent-Replayed: true``.
"""
from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from agent.api.deps import get_station, require_client
from agent.api.idempotency import IDEMPOTENCY_KEY, check_key, created
from agent.api.problems import problem_responses
from agent.errors import AgentError
from agent.loyalty.requests import (
    BlockCardRequest,
    IssueCardRequest,
    RedeemRequest,
    ReplaceCardRequest,
    ReturnRequest,
    SaleRequest,
    SimulateRequest,
    StockCountRequest,
    StockMovementRequest,
    VoidRequest,
)
from agent.loyalty.service import LoyaltyService
from agent.station import Station
from agent.tokens import Client

router = APIRouter(prefix="/v1", tags=["loyalty"])

# 401 (token), 400/413 (body) and the parameters' 422 are added by agent/api/openapi.py.
# Reads use a read transaction, so they never hit the sync-queue budget (507).
_NOT_CONFIGURED = problem_responses({503: "Loyalty program not configured (`loyalty_not_configured`)"})
_READS = {**_NOT_CONFIGURED, **problem_responses({
    403: "Session not authorized (`swipe_session_not_authorized`), its PIN entered at another POS "
         "(`swipe_session_other_pos`), its one authorized sale or redemption already used "
         "(`swipe_authorization_used`), another account's card, or a fleet vehicle card",
    404: "Unknown sale, account, card, reward, or customer (`customer_not_found` names the document or id)",
    409: "Card blocked, replaced or unassigned; swiped card not the named customer's (`card_customer_mismatch`)",
    422: "Validation failed (per-field errors)",
})}
_ERRORS = {**_READS, **problem_responses({
    409: "Receipt already booked, card state, stock, card and customer disagree (`card_customer_mismatch`), "
         "the original sale is another customer's (`sale_other_customer`)",
    422: "Validation failed, reversal too large, insufficient points, or `idempotency_key_reused`",
    507: "Sync queue full (disk budget): nothing was booked (`outbox_full`)",
})}
# Returns, voids, stock and cards need no swipe session, so no 403.
_UNSWIPED = {status: entry for status, entry in _ERRORS.items() if status != 403}
_REPLAYABLE = created("Booked (or, with `Idempotent-Replayed`, the stored first answer)")


def get_loyalty(station: Station = Depends(get_station)) -> LoyaltyService:
    loyalty = station.loyalty
    if loyalty is None:
        raise AgentError("loyalty_not_configured", "El programa de fidelización no está configurado.",
                         "The loyalty program is not configured.", status=503)
    return loyalty


def _scoped_key(client: Client, key: str | None) -> str | None:
    if key is None:
        return None
    check_key(key)
    return f"{client.name}:{key}"  # client names cannot contain ":"


def _answer(body: dict, replayed: bool, status: int = 201) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return JSONResponse(body, status_code=status, headers=headers)


@router.post("/sales", status_code=201,
             summary="Book a sale's points: by authorized swipe session, customer document or customer id",
             responses={**_ERRORS, **_REPLAYABLE})
def post_sale(body: SaleRequest, loyalty: LoyaltyService = Depends(get_loyalty),
              client: Client = Depends(require_client),
              idempotency_key: str | None = IDEMPOTENCY_KEY) -> JSONResponse:
    answer, replayed = loyalty.sale(body, _scoped_key(client, idempotency_key), pos=client.id)
    return _answer(answer, replayed)


@router.post("/sales/simulate", summary="Points a sale would earn, with explanation; books nothing",
             responses=_READS)
def simulate_sale(body: SimulateRequest, loyalty: LoyaltyService = Depends(get_loyalty),
                  client: Client = Depends(require_client)) -> JSONResponse:
    return JSONResponse(loyalty.simulate(body, pos=client.id).model_dump(mode="json"))


@router.post("/sales/returns", status_code=201, summary="Return lines or an amount of a sale",
             responses={**_UNSWIPED, **_REPLAYABLE})
def post_return(body: ReturnRequest, loyalty: LoyaltyService = Depends(get_loyalty),
                client: Client = Depends(require_client),
                idempotency_key: str | None = IDEMPOTENCY_KEY) -> JSONResponse:
    answer, replayed = loyalty.return_sale(body, _scoped_key(client, idempotency_key))
    return _answer(answer, replayed)


@router.post("/sales/voids", status_code=201, summary="Void a sale (reverses what is left)",
             responses={**_UNSWIPED, **_REPLAYABLE})
def post_void(body: VoidRequest, loyalty: LoyaltyService = Depends(get_loyalty),
              client: Client = Depends(require_client),
              idempotency_key: str | None = IDEMPOTENCY_KEY) -> JSONResponse:
    answer, replayed = loyalty.void_sale(body, _scoped_key(client, idempotency_key))
    return _answer(answer, replayed)


@router.get("/customers/{customer_id}/sales", summary="A customer's purchase history, newest first (paged)",
            responses={**_NOT_CONFIGURED, **problem_responses({
                404: "No such customer (`customer_not_found`)",
                422: "Invalid parameter or paging cursor (`invalid_cursor`)"})})
def get_customer_sales(customer_id: str, limit: int = Query(20, ge=1, le=100),
                       cursor: str | None = Query(None, max_length=200,
                                                  description="`next_cursor` of the previous page"),
                       loyalty: LoyaltyService = Depends(get_loyalty)) -> dict:
    return loyalty.customer_sales(customer_id, limit=limit, cursor=cursor)


@router.get("/accounts/{account_id}", summary="Account and balance (masked for fleet vehicle cards)",
            responses=_READS)
def get_account(account_id: str, session_id: str | None = Query(None, max_length=64),
                loyalty: LoyaltyService = Depends(get_loyalty), client: Client = Depends(require_client)) -> dict:
    return loyalty.account(account_id, session_id, pos=client.id)


@router.get("/accounts/{account_id}/movements", summary="Last 30 point movements", responses=_READS)
def get_movements(account_id: str, session_id: str | None = Query(None, max_length=64),
                  loyalty: LoyaltyService = Depends(get_loyalty), client: Client = Depends(require_client)) -> dict:
    return loyalty.movements(account_id, session_id, pos=client.id)


@router.get("/loyalty/swipes/{session_id}", summary="What to show for a swiped card: balance, messages",
            responses=_READS)
def get_swipe(session_id: str, loyalty: LoyaltyService = Depends(get_loyalty),
              client: Client = Depends(require_client)) -> dict:
    return loyalty.swipe_info(session_id, pos=client.id)


@router.get("/rewards", summary="Rewards catalog with station stock", responses=_NOT_CONFIGURED)
def get_rewards(loyalty: LoyaltyService = Depends(get_loyalty)) -> dict:
    return {"items": loyalty.catalog()}


@router.post("/rewards/redemptions", status_code=201, summary="Redeem a reward (authorized swipe session)",
             responses={**_ERRORS, **_REPLAYABLE})
def post_redemption(body: RedeemRequest, loyalty: LoyaltyService = Depends(get_loyalty),
                    client: Client = Depends(require_client),
                    idempotency_key: str | None = IDEMPOTENCY_KEY) -> JSONResponse:
    answer, replayed = loyalty.redeem(body, _scoped_key(client, idempotency_key), pos=client.id)
    return _answer(answer, replayed)


@router.post("/rewards/stock", status_code=201,
             summary="Stock in (receipt, consignment transfer in, shipment receipt) or out (transfer out)",
             responses=_UNSWIPED)
def post_stock(body: StockMovementRequest, loyalty: LoyaltyService = Depends(get_loyalty)) -> JSONResponse:
    return JSONResponse(loyalty.receive_stock(body), status_code=201)


@router.post("/rewards/stock/counts", status_code=201, summary="A physical stock count: stock set, difference recorded",
             responses=_UNSWIPED)
def post_stock_count(body: StockCountRequest, loyalty: LoyaltyService = Depends(get_loyalty)) -> JSONResponse:
    return JSONResponse(loyalty.count_stock(body), status_code=201)


@router.get("/rewards/stock/movements", summary="Stock movements, newest first, with filters (paged)",
            responses={**_NOT_CONFIGURED, **problem_responses({
                422: "Unknown kind (`invalid_kind`), a bad date (`invalid_date`) or paging cursor (`invalid_cursor`)"})})
def get_stock_movements(
    reward_id: str | None = Query(None, max_length=64),
    kind: str | None = Query(None, max_length=32, description="receipt, consignment_transfer_in, shipment_receipt, "
                                                              "transfer_out, grant or count"),
    from_: datetime | None = Query(None, alias="from", description="ISO 8601 date-time (with offset), included"),
    to: datetime | None = Query(None, description="ISO 8601 date-time (with offset), excluded"),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, max_length=200, description="`next_cursor` of the previous page"),
    loyalty: LoyaltyService = Depends(get_loyalty),
) -> dict:
    for name, value in (("from", from_), ("to", to)):
        if value is not None and value.tzinfo is None:
            raise AgentError("invalid_date", f"{name}: indique la zona horaria (por ejemplo -03:00 o Z).",
                             f"{name}: give the time zone offset (for example -03:00 or Z).", status=422, field=name)
    return loyalty.stock_movements(reward_id=reward_id, kind=kind, start=from_, end=to, limit=limit, cursor=cursor)


@router.get("/rewards/requests", summary="Scheduled rewards waiting for delivery, with the warehouse slip",
            responses=_NOT_CONFIGURED)
def get_reward_requests(loyalty: LoyaltyService = Depends(get_loyalty)) -> dict:
    return {"items": loyalty.pending_requests()}


@router.get("/rewards/replenishment", summary="Grants not yet consolidated into a replenishment, per reward",
            responses=_NOT_CONFIGURED)
def get_replenishment(loyalty: LoyaltyService = Depends(get_loyalty)) -> dict:
    return {"items": loyalty.open_replenishment()}


@router.post("/rewards/replenishment", status_code=201, summary="Consolidate the open grants into one replenishment",
             responses={**_NOT_CONFIGURED, **problem_responses({
                 409: "Nothing to replenish (`nothing_to_replenish`)",
                 507: "Sync queue full (disk budget): nothing was stored (`outbox_full`)"})})
def post_replenishment(loyalty: LoyaltyService = Depends(get_loyalty)) -> JSONResponse:
    return JSONResponse(loyalty.consolidate_replenishment(), status_code=201)


@router.post("/loyalty/cards", status_code=201, summary="Issue an unassigned card (new account or additional)",
             responses=_UNSWIPED)
def post_card(body: IssueCardRequest, loyalty: LoyaltyService = Depends(get_loyalty)) -> JSONResponse:
    return JSONResponse(loyalty.issue_card(body), status_code=201)


@router.get("/loyalty/cards/{card_number}", summary="A card by number: role, state, account, customer, summary",
            responses={**_NOT_CONFIGURED, **problem_responses({404: "Card not in the directory (`card_unknown`)"})})
def get_card(card_number: str, loyalty: LoyaltyService = Depends(get_loyalty)) -> dict:
    return loyalty.card(card_number)


@router.post("/loyalty/cards/{card_number}/block", summary="Block a lost or stolen card", responses=_UNSWIPED)
def block_card(card_number: str, body: BlockCardRequest, loyalty: LoyaltyService = Depends(get_loyalty)) -> dict:
    return loyalty.block_card(card_number, body.reason)


@router.post("/loyalty/cards/{card_number}/replace", summary="Replace a card keeping the account's balance",
             responses=_UNSWIPED)
def replace_card(card_number: str, body: ReplaceCardRequest,
                 loyalty: LoyaltyService = Depends(get_loyalty)) -> dict:
    return loyalty.replace_card(card_number, body)
