"""``GET /v1/health``: no authentication, for the POS, the technician and systemd checks."""
from __future__ import annotations

import shutil
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from agent import __version__
from agent.api.deps import get_station
from agent.station import Station

router = APIRouter(tags=["health"])


class StorageHealth(BaseModel):
    state: Literal["ok", "error"]
    schema_version: str | None = None
    free_bytes: int | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    station_id: str
    storage: StorageHealth
    components: dict[str, Any] = {}


@router.get("/v1/health", response_model=Health, summary="Agent health (no token needed)")
def health(station: Station = Depends(get_station)) -> Health:
    try:
        schema = station.db.read(
            lambda c: c.execute("SELECT name FROM schema_migrations ORDER BY rowid DESC LIMIT 1").fetchone()[0])
        free = shutil.disk_usage(station.settings.storage.data_dir).free
        storage = StorageHealth(state="ok", schema_version=schema, free_bytes=free)
    except Exception:  # noqa: BLE001 - health must answer whatever broke
        storage = StorageHealth(state="error")
    components: dict[str, Any] = {}
    degraded = storage.state != "ok"
    for name, part in station.parts():
        report = part.health()
        components[name] = report
        degraded |= report.get("state") == "error"
    return Health(status="degraded" if degraded else "ok", version=__version__,
                  station_id=station.settings.station.id, storage=storage, components=components)
