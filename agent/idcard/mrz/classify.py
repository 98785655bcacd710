"""Classify the characters of one levelled MRZ line against the OCR-B templates.

MRZ text is monospaced: once the line's ink extent is known, character i sits near
``left + i * pitch``. Each cell is matched (normalized cross-correlation) against every template
at a few small offsets; the best offset is carried to the next cell so perspective and a pitch
estimate a little off do not accumulate. The result is a score per cell and class, which the
check-digit corrector uses to choose among close alternatives.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from agent.idcard.mrz.glyphs import CELL_H, MARGIN_Y, GlyphSet

SEARCH_X = 3  # +- pixels searched around the expected cell position
SEARCH_Y = 2


@functools.lru_cache(maxsize=4)
def _bearings(glyphs: GlyphSet) -> tuple[float, float]:
    """Average blank columns left and right of the ink in a cell (line extents are ink extents)."""
    left, right = [], []
    for image in glyphs.images:
        cols = np.nonzero(image.max(axis=0) > 0.3)[0]
        if len(cols):
            left.append(cols[0])
            right.append(glyphs.cell_w - 1 - cols[-1])
    return float(np.mean(left)), float(np.mean(right))


def line_canvas(levelled: np.ndarray, top: int, bottom: int, left: int, right: int, count: int,
                glyphs: GlyphSet) -> np.ndarray:
    """The line resampled so a character is CELL_H high and ``count`` cells wide in total, ink bright."""
    lb, rb = _bearings(glyphs)
    ink_w = max(8, round(count * glyphs.cell_w - lb - rb))
    pad_y = round((bottom - top) * MARGIN_Y / CELL_H) + SEARCH_Y + 2
    y0, y1 = max(0, top - pad_y), min(levelled.shape[0], bottom + pad_y)
    scale_y = CELL_H / max(1, bottom - top)
    pad_x = round(glyphs.cell_w / scale_y)
    x0, x1 = max(0, left - pad_x), min(levelled.shape[1], right + pad_x)
    scale_x = ink_w / max(1, right - left)
    crop = levelled[y0:y1, x0:x1].astype(np.float32)
    out = cv2.resize(crop, (max(1, round(crop.shape[1] * scale_x)), max(1, round(crop.shape[0] * scale_y))),
                     interpolation=cv2.INTER_AREA if scale_y < 1 else cv2.INTER_LINEAR)
    # Place so the ink's top is at MARGIN_Y + SEARCH_Y and its left at round(lb) + SEARCH_X + cell_w.
    origin_x = round((left - x0) * scale_x)
    origin_y = round((top - y0) * scale_y)
    paper = float(np.percentile(out, 90)) if out.size else 255.0  # the card's paper under this line
    canvas = np.full((glyphs.cell_h + 2 * SEARCH_Y, (count + 2) * glyphs.cell_w + 2 * SEARCH_X), paper, np.float32)
    dst_x = round(lb) + SEARCH_X + glyphs.cell_w - origin_x
    dst_y = MARGIN_Y + SEARCH_Y - origin_y
    sy0, sx0 = max(0, -dst_y), max(0, -dst_x)
    ty0, tx0 = max(0, dst_y), max(0, dst_x)
    h = min(out.shape[0] - sy0, canvas.shape[0] - ty0)
    w = min(out.shape[1] - sx0, canvas.shape[1] - tx0)
    canvas[ty0:ty0 + h, tx0:tx0 + w] = out[sy0:sy0 + h, sx0:sx0 + w]
    return paper - canvas  # ink bright, paper ~0


def classify_line(canvas: np.ndarray, count: int, glyphs: GlyphSet) -> np.ndarray:
    """(count, len(ALPHABET)) correlation scores, cell by cell, tracking drift.

    One ``matchTemplate`` per template over the whole line (normalized correlation at every
    offset), then per cell the best offset near where it should be."""
    cell_w = glyphs.cell_w
    maps = np.stack([cv2.matchTemplate(canvas, image, cv2.TM_CCOEFF_NORMED) for image in glyphs.templates])
    best_any = maps.max(axis=0)  # (rows, cols) best class score at each offset
    scores = np.zeros((count, maps.shape[0]), np.float32)
    drift_x, drift_y = 0, 0
    rows, cols = best_any.shape
    for i in range(count):
        expected = SEARCH_X + (i + 1) * cell_w
        x0, x1 = max(0, expected + drift_x - SEARCH_X), min(cols, expected + drift_x + SEARCH_X + 1)
        y0, y1 = max(0, SEARCH_Y + drift_y - SEARCH_Y), min(rows, SEARCH_Y + drift_y + SEARCH_Y + 1)
        if x0 >= x1 or y0 >= y1:
            break
        window = best_any[y0:y1, x0:x1]
        by, bx = np.unravel_index(int(np.argmax(window)), window.shape)
        scores[i] = maps[:, y0 + by, x0 + bx]
        drift_x = int(np.clip(x0 + bx - expected, -cell_w // 3, cell_w // 3))
        drift_y = int(np.clip(y0 + by - SEARCH_Y, -SEARCH_Y, SEARCH_Y))
    return scores
