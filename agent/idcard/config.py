"""Settings of the ID-card feature (mount under ``Settings.idcard``)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class IdCardSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False  # a document camera is installed (simulated mode enables a simulated one)

    camera: str = "/dev/video0"  # device path or index, or a video file / image pattern for replays
    width: int = 1920
    height: int = 1080
    fps: float = 30
    autofocus: bool = True
    capture_timeout_s: float = Field(8.0, gt=0, le=60)
    frame_budget_ms: float = Field(150.0, gt=0)
    min_sharpness: float = Field(60.0, ge=0)  # variance of the Laplacian at 960 px width
    max_glare_fraction: float = Field(0.02, ge=0, le=1)  # share of near-white saturated pixels
    image_retention_days: int = Field(30, ge=0)  # 0 = delete as soon as the enrollment is saved
    image_dir: str = "var/idcard-images"
    key_name: str = "idcard-images"
