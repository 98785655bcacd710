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
    """(count, len(ALPHABET)) normalized-correlation scores: for each cell, every template at
    every offset within +-SEARCH_X/SEARCH_Y of where the cell should be, at the offset where some
    template fits best. All cells in one matrix product (no per-cell Python loop of OpenCV calls).
    The search is narrower than half a cell, so a neighbour can never be taken for the cell."""
    cell_w, cell_h = glyphs.cell_w, glyphs.cell_h
    windows = np.lib.stride_tricks.sliding_window_view(canvas, (cell_h, cell_w))
    xs = (SEARCH_X + (np.arange(count)[:, None] + 1) * cell_w + np.arange(-SEARCH_X, SEARCH_X + 1)[None, :])
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
