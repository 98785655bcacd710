"""``GET /v1/health``: no authentication, for the POS, the technician and systemd checks."""
from __future__ import annotations

import shutil
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from agent import __version__
from agent.api.deps import get_services
from agent.services import Services

router = APIRouter(tags=["health"])


class StorageHealth(BaseModel):
    state: Literal["ok", "error"]
    schema_version: str | None = None
    free_bytes: int | None = None
    # Why it is failing: disk_full (a write failed for lack of space), disk_low (free space under
    # storage.min_free_bytes: new work is refused with 507), unreadable.
    reason: Literal["disk_full", "disk_low", "unreadable"] | None = None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    station_id: str
    storage: StorageHealth
    components: dict[str, Any] = {}


@router.get("/v1/health", response_model=Health, summary="Agent health (no token needed)")
def health(services: Services = Depends(get_services)) -> Health:
    try:
        schema = services.db.read(
            lambda c: c.execute("SELECT name FROM schema_migrations ORDER BY rowid DESC LIMIT 1").fetchone()[0])
        free = shutil.disk_usage(services.settings.storage.data_dir).free
        reserve = services.settings.storage.min_free_bytes
        reason = services.db.storage_problem or ("disk_low" if reserve is not None and free < reserve else None)
        storage = StorageHealth(state="error" if reason else "ok", schema_version=schema, free_bytes=free,
                                reason=reason)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - health must answer whatever broke
        storage = StorageHealth(state="error", reason="unreadable")
    components: dict[str, Any] = {}
    degraded = storage.state != "ok"
    for name, part in services.extras.items():
        status = getattr(type(part), "health", None)
        if callable(status):
            report = status(part)
            components[name] = report
            degraded |= isinstance(report, dict) and report.get("state") == "error"
    return Health(status="degraded" if degraded else "ok", version=__version__,
                  station_id=services.settings.station.id, storage=storage, components=components)
