"""Settings of health, alerts and metrics (mounted as ``Settings.monitoring``)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MonitoringSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    head_office_unreachable_after_s: float = Field(
        300.0, gt=0, description="Health says head_office_unreachable once the broker has been out this long.")
    backlog_max_age_s: float = Field(
        3600.0, gt=0, description="Health says sync_backlog_old when the oldest unconfirmed event is older.")
    disk_budget_warn_fraction: float = Field(
        0.8, gt=0, le=1, description="Health says disk_budget_high when unconfirmed events use this share of mqtt.outbox_max_bytes.")
    disk_free_min_bytes: int = Field(
        200 * 1024 * 1024, ge=0, description="Health says disk_low (failing) when the data folder's disk has less free.")
    metrics_enabled: bool = Field(
        True, description="Serve GET /metrics and time every request (Prometheus).")
