"""Front/back photo checks: focus (variance of the Laplacian) and glare (saturated highlights)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class QualityReport:
    sharpness: float
    glare_fraction: float
    problems: tuple[str, ...]  # "blurry", "glare": ask the attendant for a retake

    @property
    def ok(self) -> bool:
        return not self.problems


def assess(image: np.ndarray, *, min_sharpness: float, max_glare_fraction: float) -> QualityReport:
    """Measure at a fixed width so thresholds do not depend on the camera's resolution.

    >>> flat = np.full((540, 960), 128, np.uint8)
    >>> assess(flat, min_sharpness=60, max_glare_fraction=0.02).problems
    ('blurry',)
    >>> checker = (np.indices((540, 960)).sum(axis=0) // 8 % 2 * 200).astype(np.uint8)
    >>> assess(checker, min_sharpness=60, max_glare_fraction=0.02).ok
    True
    """
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    scale = 960 / gray.shape[1]
    gray = cv2.resize(gray, (960, max(1, round(gray.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    sharpness = float(cv2.Laplacian(gray, cv2.CV_64F).var())
    glare = float(np.count_nonzero(gray >= 250)) / gray.size
    problems = []
    if sharpness < min_sharpness:
        problems.append("blurry")
    if glare > max_glare_fraction:
        problems.append("glare")
    return QualityReport(round(sharpness, 1), round(glare, 4), tuple(problems))
