"""Settings of the ID-card feature (mount under ``Settings.idcard``)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# CPU budget per image of the barcode pipeline (ms of the decoding thread; see docs/configuration.md).
# A frame of the live camera loop gets LIVE_FRAME_BUDGET_MS: a miss is followed by a new frame
# (new noise, glare and hand pose), a better bet than more work on the same pixels, and on a
# station PC ~3x slower than the bench machine a bigger budget would hold the loop for longer.
# A still image (``loyalty-agent idcard decode FILE``) has no next frame: STILL_BUDGET_MS.
LIVE_FRAME_BUDGET_MS = 150.0
STILL_BUDGET_MS = 300.0


class IdScannerSettings(BaseModel):
    """Hand-held scanners that give text (``[idcard.scanners]``); both off unless a device is named."""

    model_config = ConfigDict(extra="forbid")

    mrz_serial_port: str | None = Field(None, description="Serial port of an MRZ reader (/dev/ttyACM0, /dev/ttyUSB0).")
    mrz_baudrate: int = Field(9600, ge=1200)
    wedge_device: str | None = Field(None, description="/dev/input/by-id/...-event-kbd of a keyboard-wedge "
                                                       "PDF417/QR scanner (grabbed: its keys reach no console).")
    wedge_layout: Literal["us", "es", "latam"] = Field("us", description="Keyboard layout the wedge scanner "
                                                                          "types for (es/latam keep Ñ and accents).")
    inter_key_timeout_s: float = Field(0.15, gt=0, le=2)
    keep_s: float = Field(120.0, gt=0, le=3600, description="How long a scan can be fetched or used to enroll.")


class IdCardSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False  # a document camera is installed (simulated mode enables a simulated one)

    camera: str = "/dev/video0"  # device path or index, or a video file / image pattern for replays
    width: int = 1920
    height: int = 1080
    fps: float = 30
    autofocus: bool = True
    capture_timeout_s: float = Field(8.0, gt=0, le=60)
    frame_budget_ms: float = Field(LIVE_FRAME_BUDGET_MS, gt=0)  # CPU ms of the decoding thread per frame (wall capped at 600 ms)
    min_sharpness: float = Field(60.0, ge=0)  # variance of the Laplacian at 960 px width
    max_glare_fraction: float = Field(0.02, ge=0, le=1)  # share of near-white saturated pixels
    image_retention_days: int = Field(30, ge=0)  # 0 = delete as soon as the enrollment is saved
    image_dir: str = "var/idcard-images"
    key_name: str = "idcard-images"
    scanners: IdScannerSettings = Field(default_factory=IdScannerSettings)
