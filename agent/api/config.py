"""Settings of the local HTTP API (mounted as ``Settings.api``)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Listen address. Keep 127.0.0.1 unless a POS on another host needs it.")
    port: int = Field(8787, ge=1, le=65535)
    cors_origins: list[str] = Field(default_factory=list, description="Browser origins allowed to call the API (none by default).")
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Larger request bodies are refused with 413.")
    idempotency_retention_hours: int = Field(72, ge=1)
