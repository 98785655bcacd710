"""Document camera: OpenCV ``VideoCapture`` over a V4L2 device, a video file or an image sequence.

One interface (:class:`FrameSource`) for the live camera and for replays, so the capture loop and
the tests run the same code. Device I/O only: no decoding policy and no framework imports here.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import cv2
import numpy as np

T = TypeVar("T")


class CameraError(OSError):
    """The camera (or replay file) cannot be opened or stopped delivering frames."""


class FrameSource(Protocol):
    def read(self) -> np.ndarray | None:
        """Next BGR frame, or ``None`` when the source is exhausted or a grab failed."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class CameraSettings:
    """What we ask of a V4L2 device; each is applied only if not ``None`` and the device may
    ignore any of them (``applied`` in :class:`OpenCVCamera` reports what it reports back)."""

    width: int | None = 1920
    height: int | None = 1080
    fps: float | None = 30
    fourcc: str | None = "MJPG"  # 1080p at 30 fps over USB 2 needs MJPEG; YUYV gives ~5 fps
    autofocus: bool | None = True
    focus: int | None = None  # manual focus value, only when autofocus is False
    exposure: float | None = None  # manual exposure (V4L2 units), None = automatic
    buffer_size: int | None = 1  # we want the newest frame, not a queue of stale ones


def _is_device(source: str | int) -> bool:
    return isinstance(source, int) or str(source).startswith("/dev/video") or str(source).isdigit()


class OpenCVCamera:
    """A :class:`FrameSource` over ``cv2.VideoCapture``."""

    def __init__(self, source: str | int, settings: CameraSettings | None = None) -> None:
        self.source = source
        self.settings = settings or CameraSettings()
        self.applied: dict[str, float] = {}
        if _is_device(source):
            device = int(source) if str(source).isdigit() else str(source)
            self._capture = cv2.VideoCapture(device, cv2.CAP_V4L2)
            if self._capture.isOpened():
                self._configure()
        else:
            path = str(source)
            if "%" not in path and not Path(path).exists():
                raise CameraError(f"no such video or image sequence: {path}")
            # An image sequence is a printf pattern ("frames/%04d.jpg"); OpenCV picks the image backend.
            self._capture = cv2.VideoCapture(path)
        if not self._capture.isOpened():
            raise CameraError(f"cannot open camera source {source!r}")

    def _configure(self) -> None:
        s = self.settings
        wanted: list[tuple[str, int, float | None]] = [
            ("fourcc", cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*s.fourcc) if s.fourcc else None),
            ("width", cv2.CAP_PROP_FRAME_WIDTH, s.width),
            ("height", cv2.CAP_PROP_FRAME_HEIGHT, s.height),
            ("fps", cv2.CAP_PROP_FPS, s.fps),
            ("buffer_size", cv2.CAP_PROP_BUFFERSIZE, s.buffer_size),
            ("autofocus", cv2.CAP_PROP_AUTOFOCUS, None if s.autofocus is None else float(s.autofocus)),
            ("focus", cv2.CAP_PROP_FOCUS, s.focus if s.autofocus is False else None),
            # V4L2 through OpenCV: 1 = manual, 3 = aperture priority (automatic).
            ("auto_exposure", cv2.CAP_PROP_AUTO_EXPOSURE, 1 if s.exposure is not None else None),
            ("exposure", cv2.CAP_PROP_EXPOSURE, s.exposure),
        ]
        for name, prop, value in wanted:
            if value is not None and self._capture.set(prop, float(value)):
                self.applied[name] = self._capture.get(prop)

    def read(self) -> np.ndarray | None:
        ok, frame = self._capture.read()
        return frame if ok and frame is not None else None

    def close(self) -> None:
        self._capture.release()

    def __enter__(self) -> OpenCVCamera:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_camera(source: str | int, settings: CameraSettings | None = None) -> OpenCVCamera:
    """Device index / ``/dev/videoN`` path, a video file, or an image-sequence pattern."""
    return OpenCVCamera(source, settings)


def capture_until(source: FrameSource, attempt: Callable[[np.ndarray], T | None], timeout_s: float, *,
                  clock: Callable[[], float] = time.monotonic) -> tuple[T | None, int]:
    """Feed successive frames to ``attempt`` until it returns a result or ``timeout_s`` passes.

    Returns ``(result or None, frames tried)``. A source that runs dry (end of a replay) ends the
    loop early; a live camera that fails a grab is retried until the deadline.
    """
    deadline = clock() + timeout_s
    frames = 0
    misses = 0
    while clock() < deadline:
        frame = source.read()
        if frame is None:
            misses += 1
            if misses >= 3:  # a replay ended, or the device vanished
                break
            continue
        misses = 0
        frames += 1
        result = attempt(frame)
        if result is not None:
            return result, frames
    return None, frames
