"""``GET /v1/sync`` (what is synced and what is not) and ``POST /v1/sync`` ("sync now")."""
from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from agent.api.deps import get_station
from agent.station import Station

router = APIRouter(prefix="/v1/sync", tags=["sync"])


class BrokerStatus(BaseModel):
    state: str = Field(description="disabled | connecting | connected | disconnected")
    since: str | None = None
    last_error: str | None = None
    url: str | None = None
    reconnects: int | None = None


class SyncStatus(BaseModel):
    pending: int = Field(description="Events not yet accepted by the broker")
    delivered: int = Field(description="Accepted by the broker (PUBACK), not yet confirmed by head office")
    confirmed: int = Field(description="Confirmed by head office and still kept (retention)")
    unconfirmed_bytes: int
    oldest_pending_at: str | None
    oldest_pending_age_s: float | None
    last_success_at: str | None = Field(description="Last head-office confirmation")
    set_aside: int = Field(0, description="Events set aside as larger than the broker accepts (alerted once, not resent)")
    refused: int = Field(description="Operations refused because the sync queue was full")
    last_refused_at: str | None
    budget_bytes: int | None
    budget_age_s: int | None
    broker: BrokerStatus
    downlink: dict[str, Any] = Field(description="Configuration versions applied, by kind")


class SyncRequested(BaseModel):
    requested: bool = Field(description="False when no head office is configured (offline station)")
    status: SyncStatus


@router.get("", response_model=SyncStatus, summary="Sync status: pending, delivered, confirmed, broker")
def sync_status(station: Station = Depends(get_station)) -> dict[str, Any]:
    return station.sync.status()


@router.post("", response_model=SyncRequested, status_code=202, summary="Sync now")
def sync_now(station: Station = Depends(get_station)) -> dict[str, Any]:
    sync = station.sync
    return {"requested": sync.request_sync(), "status": sync.status()}
