"""Fake document camera: serves frames from image files through the camera driver's interface.

It decodes real JPEG/PNG files with OpenCV (the same bytes a camera would produce) and returns
them one by one like ``OpenCVCamera.read``; ``None`` after the last one (or loops). Used where a
V4L2 device cannot exist (CI); the driver itself is tested on real video files.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


class FakeCamera:
    def __init__(self, frames: list[Path | bytes], *, loop: bool = False) -> None:
        self._frames = list(frames)
        self._loop = loop
        self._index = 0
        self.closed = False
        self.reads = 0

    def read(self) -> np.ndarray | None:
        if self.closed:
            raise RuntimeError("read from a closed camera")
        if self._index >= len(self._frames):
            if not self._loop or not self._frames:
                return None
            self._index = 0
        item = self._frames[self._index]
        self._index += 1
        self.reads += 1
        raw = item if isinstance(item, bytes) else Path(item).read_bytes()
        frame = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        return frame  # None for a corrupt file, as a real grab failure would be

    def close(self) -> None:
        self.closed = True
