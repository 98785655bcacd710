"""Simulated document camera: each capture shows a freshly generated synthetic ID card back.

Used by the agent's simulated mode so a POS integrator can exercise the whole capture flow
(barcode, prefilled form, front/back photos) without a camera. The people are synthetic.
"""
from __future__ import annotations

import random

import cv2
import numpy as np


class SimulatedCamera:
    def __init__(self, kind: str = "co_cedula", seed: int | None = None, frames: int = 30) -> None:
        from agent.idcard.synthetic_frames import make_frame

        rng = random.Random(seed)
        # A card held reasonably (slight angle, good light, no glare): the demo should read first
        # time; the hard cases are the benchmark's job (bench/bench_idcard.py). Light 0.9, not 1.0:
        # at full light the barcode's white modules saturate and every photo was refused as glare.
        frame = make_frame(rng, kind=kind, module=3.0, angle=rng.uniform(-8, 8), tilt=0.02, light=0.9,
                           glare=0, blur=0.3, noise=2.0, quality=90)
        self._image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
        self._left = frames

    def read(self) -> np.ndarray | None:
        if self._left <= 0:
            return None
        self._left -= 1
        return self._image.copy()

    def close(self) -> None:
        self._left = 0
