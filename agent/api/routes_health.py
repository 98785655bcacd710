"""``GET /v1/health``: no authentication, for the POS, the technician and systemd checks.

``status`` is ``ok``, ``degraded`` (works, a technician should look) or ``failing`` (new work is
refused); ``reasons`` say why, with stable codes (see docs/operations.md). Always HTTP 200 when
the agent answers: a POS reads the body, and a failing station still serves lookups.
"""
from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from agent import __version__
from agent.api.deps import get_station
from agent.api.problems import language
from agent.ops.health import assess
from agent.station import Station

router = APIRouter(tags=["health"])


class StorageHealth(BaseModel):
    state: Literal["ok", "error"]
    schema_version: str | None = None
    free_bytes: int | None = None


class HealthReason(BaseModel):
    code: str = Field(description="Stable code, e.g. head_office_unreachable, device_missing, pin_bundle_expired")
    severity: Literal["degraded", "failing"]
    message: str = Field(description="For people: Spanish, or English with Accept-Language: en")
    detail: dict[str, Any] = {}


class Health(BaseModel):
    status: Literal["ok", "degraded", "failing"]
    version: str
    station_id: str
    storage: StorageHealth
    components: dict[str, Any] = {}
    reasons: list[HealthReason] = Field(default_factory=list, description="Why the status is not ok (empty when ok)")
    devices: dict[str, Any] = Field(default_factory=dict, description="Configured devices: state up/down/unknown")
    disk: dict[str, Any] = Field(default_factory=dict, description="Free space and the sync queue's disk budget")


@router.get("/v1/health", response_model=Health, summary="Agent health (no token needed)")
def health(request: Request, station: Station = Depends(get_station)) -> Health:
    report = assess(station)
    lang = language(request)
    storage = (StorageHealth(state="ok", schema_version=report.schema_version, free_bytes=report.disk.get("free_bytes"))
               if report.storage_ok else StorageHealth(state="error"))
    return Health(status=report.status, version=__version__, station_id=station.settings.station.id,
                  storage=storage, components=station.health(),
                  reasons=[HealthReason(**r.as_dict(lang)) for r in report.reasons],
                  devices=report.devices_dict(), disk=report.disk)
