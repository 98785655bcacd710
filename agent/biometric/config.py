"""Settings of the fingerprint feature, mounted by the core under ``Settings.fingerprint``."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.secret_fields import secret_field
from agent.settings_loader import bilingual

SensorModel = Literal["R305", "R307", "R503", "ZFM-20", "AS608"]


class FingerprintSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # Prefer the stable /dev/serial/by-id/... name: /dev/ttyUSB0 can change after a replug.
    port: str = "/dev/ttyUSB0"
    baud: int = 57600
    address: int = Field(default=0xFFFFFFFF, ge=0, le=0xFFFFFFFF)
    password: int = secret_field(0, ge=0, le=0xFFFFFFFF)  # the module password: a secret once changed from 0
    model: SensorModel = "R307"
    # Our own acceptance threshold on the sensor's Match score (0..~300 on this family);
    # the sensor's built-in verdict is not used.
    score_threshold: int = Field(default=60, ge=1, le=1000)
    reply_timeout_s: float = Field(default=1.0, gt=0, le=30)
    capture_timeout_s: float = Field(default=2.0, gt=0, le=30)
    finger_wait_s: float = Field(default=20.0, gt=0, le=300)
    reminder_every_s: float = Field(default=5.0, gt=0, le=60)
    max_capture_attempts: int = Field(default=3, ge=1, le=10)
    reconnect_every_s: float = Field(default=2.0, gt=0, le=60)
    # Simulated mode: run the agent.simulators pty sensor instead of opening a real port (demo/dev).
    simulated: bool = False

    @field_validator("baud")
    @classmethod
    def _baud_is_9600_multiple(cls, value: int) -> int:
        if value % 9600 or not 1 <= value // 9600 <= 12:
            raise bilingual("la velocidad debe ser 9600 x N con N entre 1 y 12", "baud must be 9600 x N with N in 1..12")
        return value
