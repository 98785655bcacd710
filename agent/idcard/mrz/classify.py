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
SEARCH_Y = 1


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
                glyphs: GlyphSet, box_caps: float = 1.0) -> tuple[np.ndarray, float]:
    """The line resampled so a capital is CELL_H high, ink bright, and the pitch of its cells there.

    ``box_caps`` is the ink box's height in cap heights: 1.0 for a line of letters and fillers,
    ``glyphs.digit_caps`` when its digits set the top (the caller tries both). The glyphs keep
    their aspect: ICAO prints at a 2.54 mm pitch whatever the cap height, so the pitch is
    measured from the ink's extent and the cells are placed at it, not stretched to the font's
    advance (that squeezed a wide-pitched 'O' into a '0')."""
    lb, rb = _bearings(glyphs)
    scale = CELL_H * box_caps / max(1, bottom - top)
    rise = round(CELL_H * (box_caps - 1.0))  # template rows the box's top sits above the cap line
    pad_y = round((bottom - top) * (MARGIN_Y + 1) / (CELL_H * box_caps)) + SEARCH_Y + 2
    y0, y1 = max(0, top - pad_y), min(levelled.shape[0], bottom + pad_y)
    pad_x = round(glyphs.cell_w / scale)
    x0, x1 = max(0, left - pad_x), min(levelled.shape[1], right + pad_x)
    crop = levelled[y0:y1, x0:x1].astype(np.float32)
    out = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    # Ink extent = (count - 1) pitches + one glyph's ink width.
    pitch = max(0.6 * glyphs.cell_w, ((right - left) * scale - (glyphs.cell_w - lb - rb)) / max(1, count - 1))
    # Place so the ink's top is at MARGIN_Y + SEARCH_Y - rise and its left at round(lb) + SEARCH_X + cell_w.
    origin_x = round((left - x0) * scale)
    origin_y = round((top - y0) * scale)
    paper = float(np.percentile(out, 90)) if out.size else 255.0  # the card's paper under this line
    width = round((count - 1) * pitch) + 3 * glyphs.cell_w + 2 * SEARCH_X
    canvas = np.full((glyphs.cell_h + 2 * SEARCH_Y, width), paper, np.float32)
    dst_x = round(lb) + SEARCH_X + glyphs.cell_w - origin_x
    dst_y = MARGIN_Y + SEARCH_Y - rise - origin_y
    sy0, sx0 = max(0, -dst_y), max(0, -dst_x)
    ty0, tx0 = max(0, dst_y), max(0, dst_x)
    h = min(out.shape[0] - sy0, canvas.shape[0] - ty0)
    w = min(out.shape[1] - sx0, canvas.shape[1] - tx0)
    canvas[ty0:ty0 + h, tx0:tx0 + w] = out[sy0:sy0 + h, sx0:sx0 + w]
    return paper - canvas, pitch  # ink bright, paper ~0


def classify_line(canvas: np.ndarray, count: int, glyphs: GlyphSet, pitch: float | None = None) -> np.ndarray:
    """(count, len(ALPHABET)) normalized-correlation scores: for each cell, every template at
    every offset within +-SEARCH_X/SEARCH_Y of where the cell should be, at the offset where some
    template fits best. All cells in one matrix product (no per-cell Python loop of OpenCV calls).
    The search is narrower than half a cell, so a neighbour can never be taken for the cell."""
    cell_w, cell_h = glyphs.cell_w, glyphs.cell_h
    windows = np.lib.stride_tricks.sliding_window_view(canvas, (cell_h, cell_w))
    starts = SEARCH_X + cell_w + np.round(np.arange(count) * (cell_w if pitch is None else pitch)).astype(int)
    xs = starts[:, None] + np.arange(-SEARCH_X, SEARCH_X + 1)[None, :]
    xs = np.clip(xs, 0, windows.shape[1] - 1)  # (count, nx)
    ys = np.clip(np.arange(2 * SEARCH_Y + 1), 0, windows.shape[0] - 1)  # (ny,)
    patches = windows[ys[:, None, None], xs[None, :, :]]  # (ny, count, nx, cell_h, cell_w)
    ny, _, nx = patches.shape[:3]
    flat = np.ascontiguousarray(patches.reshape(-1, cell_h * cell_w), dtype=np.float32)
    flat = flat - flat.mean(axis=1, keepdims=True)
    flat /= np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-6)
    # OpenCV's gemm, not numpy's: a BLAS spreading this small product over threads spends more
    # time waking them than multiplying (measured 3x slower on a busy 2-core machine).
    correlation = cv2.gemm(flat, glyphs.vectors, 1.0, None, 0.0, flags=cv2.GEMM_2_T).reshape(ny, count, nx, -1)
    per_offset = correlation.transpose(1, 0, 2, 3).reshape(count, ny * nx, -1)
    best = per_offset.max(axis=2).argmax(axis=1)  # (count,)
    return per_offset[np.arange(count), best]
