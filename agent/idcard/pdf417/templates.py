"""Codewords no scanline could read, matched whole against their cluster's 929 patterns.

The run reader (:mod:`agent.idcard.pdf417.runs`) needs every one of a codeword's nine bar edges
on one pixel row; at 2-2.5 px modules under the specification's blur and a dim frame's noise a
one-module space closes or a spurious edge opens on most rows, and a cell no row reads is an
erasure. Here the cell's grey profile is averaged over the middle of its module row (the row
and column geometry come from the cells that did read), sampled twice a module, and correlated
with every pattern of the row's cluster, each blurred a little as a camera would: the best one
is taken only when it correlates well and clearly better than the next.
"""
from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

SAMPLES = 2  # samples a module
LINES = 5  # pixel rows averaged, spread over the middle 60% of the module row
MIN_SCORE = 0.5  # correlation of the best pattern
MIN_MARGIN = 0.03  # over the second best


@lru_cache(maxsize=1)
def patterns() -> np.ndarray:
    """(3, 929, 17 * SAMPLES): each cluster's patterns, light +1 and bar -1, blurred (sigma 0.4
    module), zero mean and unit norm."""
    from pdf417gen.codes import CODES

    bits = np.asarray([[[(code >> (16 - k)) & 1 for k in range(17)] for code in cluster] for cluster in CODES],
                      np.float32)
    wave = np.repeat(1 - 2 * bits, SAMPLES, axis=2)
    kernel = cv2.getGaussianKernel(7, 0.4 * SAMPLES).ravel()
    padded = np.concatenate([np.ones_like(wave[..., :3]), wave, np.ones_like(wave[..., :3])], axis=2)
    blurred = sum(kernel[k] * padded[..., k:k + wave.shape[2]] for k in range(7))
    blurred = blurred - blurred.mean(axis=2, keepdims=True)
    return (blurred / np.linalg.norm(blurred, axis=2, keepdims=True)).astype(np.float32)


def profiles(image: np.ndarray, ys: np.ndarray, pitch: np.ndarray, xs: np.ndarray,
             modules: np.ndarray) -> np.ndarray:
    """Per cell, the grey levels from one module before its start ``xs`` to one module after its
    17, SAMPLES a module, averaged over LINES pixel rows around its row centre ``ys`` (pixel
    rows; ``pitch`` the module row's height; x as the edges', pixel i spanning [i, i + 1))."""
    count = 19 * SAMPLES
    u = (np.arange(count, dtype=np.float32) - SAMPLES + 0.5) / SAMPLES  # in modules from the start
    spread = np.linspace(-0.3, 0.3, LINES, dtype=np.float32)
    map_x = xs[:, None, None] + modules[:, None, None] * u[None, None, :] - 0.5
    map_y = ys[:, None, None] + pitch[:, None, None] * spread[None, :, None]
    map_x = np.broadcast_to(map_x, (len(xs), LINES, count)).reshape(-1, count).astype(np.float32)
    map_y = np.broadcast_to(map_y, (len(xs), LINES, count)).reshape(-1, count).astype(np.float32)
    sampled = cv2.remap(image.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(len(xs), LINES, count).mean(axis=1)


def match(profile: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Per cell, the value (0..928) of the pattern of its cluster its profile matches (sampled
    from where the column's drift puts the codeword's start: shifting the window half a module
    either way measured no better), -1 where no match is clear."""
    width = 17 * SAMPLES
    out = np.full(len(profile), -1, np.int64)
    table = patterns()
    for cluster in range(3):
        sel = np.flatnonzero(clusters == cluster)
        if len(sel) == 0:
            continue
        window = profile[sel, SAMPLES:SAMPLES + width]
        window = window - window.mean(axis=1, keepdims=True)
        window = window / np.maximum(np.linalg.norm(window, axis=1, keepdims=True), 1e-6)
        scores = window @ table[cluster].T
        top2 = np.partition(scores, -2, axis=1)[:, -2:]
        value = scores.argmax(axis=1)
        best = top2[:, ::-1]
        sure = (best[:, 0] >= MIN_SCORE) & (best[:, 0] - best[:, 1] >= MIN_MARGIN)
        out[sel[sure]] = value[sure]
    return out
