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
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names the API answers to besides loopback ones (localhost, 127.0.0.1, ::1) and "
                    "api.host; any other Host header gets 421 (stops DNS-rebinding pages).")
    max_streams_per_client: int = Field(8, ge=1, le=100,
                                        description="Open event streams and long polls per token; more get 429.")
    max_connections: int = Field(
        200, ge=10, le=900,
        description="Open connections at once; past it idle ones are closed first, then new ones refused "
                    "(keeps the agent far from its file-descriptor limit).")
    header_timeout_s: float = Field(10.0, gt=0, le=120,
                                    description="A request's headers must arrive within this; idle keep-alive "
                                                "connections close after it too.")
