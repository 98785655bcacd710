"""Classify the characters of one levelled MRZ line against the OCR-B templates.

MRZ text is monospaced: once the line's ink extent is known, character i sits near
``left + i * pitch``. Each cell is matched (normalized cross-correlation) against every template
at a few small offsets; a line that fits poorly is re-tracked (:func:`retrack`) so perspective and
a pitch estimate a little off do not push far cells out of their search. The result is a score
per cell and class, which the check-digit corrector uses to choose among close alternatives.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from agent.idcard.mrz.glyphs import CELL_H, MARGIN_Y, GlyphSet

SEARCH_X = 3  # +- pixels searched around the expected cell position
SEARCH_Y = 1
# Rows of canvas above and below the template's, so a re-tracked line can follow cells that rise or
# fall along it (see :func:`retrack`) beyond the usual +-SEARCH_Y.
PAD_Y = 4
FLAT_SPREAD = 0.5  # grey levels of standard deviation: a patch flatter than this holds no glyph


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
                glyphs: GlyphSet, box_caps: float = 1.0, drift: float = 0.0,
                ratio: float = 1.0) -> tuple[np.ndarray, float]:
    """The line resampled so a capital is CELL_H high, ink bright, and the pitch of its cells there.

    ``box_caps`` is the ink box's height in cap heights: 1.0 for a line of letters and fillers,
    ``glyphs.digit_caps`` when its digits set the top (the caller tries both). The glyphs keep
    their aspect: ICAO prints at a 2.54 mm pitch whatever the cap height, so the pitch is
    measured from the ink's extent and the cells are placed at it, not stretched to the font's
    advance (that squeezed a wide-pitched 'O' into a '0'). A card tilted along the line shows it
    in perspective: ``drift`` (px the line's middle falls from its left end to its right end) and
    ``ratio`` (character height at the right end over the left end) map the line's quadrilateral
    onto the canvas, so the pitch shrinks towards the far end as the print does."""
    lb, rb = _bearings(glyphs)
    # The box of a sloping line is taller than its characters, and its height is the far (taller) end's.
    height = max(1.0, (bottom - top) * (1 + ratio) / (2 * max(1.0, ratio)))
    scale = CELL_H * box_caps / height
    rise = CELL_H * (box_caps - 1.0)  # template rows the box's top sits above the cap line
    ink_w = glyphs.cell_w - lb - rb  # one glyph's ink, on average
    pitch = max(0.6 * glyphs.cell_w, ((right - left) * scale - ink_w) / max(1, count - 1))
    x0 = round(lb) + SEARCH_X + glyphs.cell_w
    x1 = x0 + (count - 1) * pitch + ink_w
    y0 = MARGIN_Y + PAD_Y - rise
    y1 = y0 + CELL_H * box_caps
    middle = (top + bottom) / 2
    h_left = 2 * height / (1 + ratio)
    h_right = ratio * h_left
    src = np.float32([[left, middle - drift / 2 - h_left / 2], [right, middle + drift / 2 - h_right / 2],
                      [right, middle + drift / 2 + h_right / 2], [left, middle - drift / 2 + h_left / 2]])
    dst = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    size = (round((count - 1) * pitch) + 3 * glyphs.cell_w + 2 * SEARCH_X, glyphs.cell_h + 2 * PAD_Y)
    band_top = max(0, int(top - height))  # only the line's band is warped
    band = levelled[band_top:int(bottom + height) + 1].astype(np.float32)
    src[:, 1] -= band_top
    if scale < 0.8:  # shrinking: smooth first, as INTER_AREA would
        band = cv2.GaussianBlur(band, (0, 0), 0.5 / scale)
    canvas = cv2.warpPerspective(band, cv2.getPerspectiveTransform(src, dst), size,
                                 flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    paper = float(np.percentile(canvas, 90))  # the card's paper under this line
    return paper - canvas, pitch  # ink bright, paper ~0


# Pitch at the line's right end over its left end, tried on a line that fits poorly: a card
# turned about its short axis shrinks the print along the lines much more than across them (spec
# corpus, tilt 0.13-0.18: pitch 22 -> 29.5 px along a line of constant height), beyond what the
# height-based perspective of :func:`line_canvas` and the +-10 px re-tracking can follow.
STRETCHES = (0.75, 0.87, 1.15, 1.33)


def along(canvas: np.ndarray, pitch: float, count: int, glyphs: GlyphSet, stretch: float) -> np.ndarray:
    """The line canvas resampled along its length so cells whose pitch grows linearly from the left
    end to the right by ``stretch`` land at a uniform ``pitch``; the line's ends stay put."""
    if stretch == 1.0:
        return canvas
    origin, length = SEARCH_X + glyphs.cell_w, count * pitch
    u = np.arange(canvas.shape[1], dtype=np.float32)
    f = np.clip((u - origin) / length, 0.0, 1.0)
    k = stretch - 1.0
    source = origin + length * (f + k * f * f / 2) / (1 + k / 2) + (u - origin - length * f)
    map_x = np.broadcast_to(source, canvas.shape).astype(np.float32)
    map_y = np.broadcast_to(np.arange(canvas.shape[0], dtype=np.float32)[:, None], canvas.shape).astype(np.float32)
    return cv2.remap(canvas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def classify_cells(canvas: np.ndarray, count: int, glyphs: GlyphSet, pitch: float | None = None,
                   shifts: np.ndarray | None = None, search_x: int = SEARCH_X,
                   cells: np.ndarray | None = None, search_y: int = SEARCH_Y,
                   shifts_y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(count, len(ALPHABET)) normalized-correlation scores: for each cell (or each of ``cells``), every template at
    every offset within +-search_x/search_y of where the cell should be (``shifts``, ``shifts_y``:
    per-cell corrections to that place, px), at the offset where some template fits best; and that
    offset's x per cell. All cells in one matrix product (no per-cell Python loop of OpenCV
    calls). The search is narrower than half a cell, so a neighbour can never be taken for the cell."""
    scores, dx, _ = located(canvas, count, glyphs, pitch, shifts, search_x, cells, search_y, shifts_y)
    return scores, dx


def located(canvas: np.ndarray, count: int, glyphs: GlyphSet, pitch: float | None = None,
            shifts: np.ndarray | None = None, search_x: int = SEARCH_X, cells: np.ndarray | None = None,
            search_y: int = SEARCH_Y, shifts_y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`classify_cells`, and the best offset's y per cell too."""
    cell_w, cell_h = glyphs.cell_w, glyphs.cell_h
    windows = np.lib.stride_tricks.sliding_window_view(canvas, (cell_h, cell_w))
    index = np.arange(count) if cells is None else cells  # ``cells``: only these (a quick preview)
    starts = SEARCH_X + cell_w + np.round(index * (cell_w if pitch is None else pitch)).astype(int)
    if shifts is not None:
        starts = starts + shifts.astype(int)
    count = len(index)
    xs = starts[:, None] + np.arange(-search_x, search_x + 1)[None, :]
    xs = np.clip(xs, 0, windows.shape[1] - 1)  # (count, nx)
    ys = PAD_Y + np.arange(-search_y, search_y + 1)[:, None] + np.zeros((1, count), int)  # (ny, count)
    if shifts_y is not None:
        ys = ys + shifts_y.astype(int)[None, :]
    ys = np.clip(ys, 0, windows.shape[0] - 1)
    patches = windows[ys[:, :, None], xs[None, :, :]]  # (ny, count, nx, cell_h, cell_w)
    ny, _, nx = patches.shape[:3]
    flat = np.ascontiguousarray(patches.reshape(-1, cell_h * cell_w), dtype=np.float32)
    # The templates are zero-mean: a patch's mean drops out of the product, and only its spread
    # (sum of squares less n * mean^2) is needed to normalise, with no centred copy of the patches.
    n = cell_h * cell_w
    sums = flat.sum(axis=1)
    spread = np.sqrt(np.maximum(np.einsum("ij,ij->i", flat, flat) - sums * sums / n, 1e-12))
    # OpenCV's gemm, not numpy's: a BLAS spreading this small product over threads spends more
    # time waking them than multiplying (measured 3x slower on a busy 2-core machine).
    correlation = cv2.gemm(flat, glyphs.vectors, 1.0, None, 0.0, flags=cv2.GEMM_2_T)
    # A flat patch (glare saturated the cell) is like no glyph: its spread is ~0, and dividing by
    # it gave scores far above 1 that lifted a washed-out line's mean past every threshold.
    correlation = np.where((spread > FLAT_SPREAD * np.sqrt(n))[:, None],
                           correlation / np.maximum(spread, 1e-6)[:, None], 0.0)
    correlation = correlation.astype(np.float32).reshape(ny, count, nx, -1)
    per_offset = correlation.transpose(1, 0, 2, 3).reshape(count, ny * nx, -1)
    best = per_offset.max(axis=2).argmax(axis=1)  # (count,)
    offsets = (best % nx - search_x).astype(np.float32)
    rises = (best // nx - search_y).astype(np.float32)
    return (per_offset[np.arange(count), best], offsets + (0 if shifts is None else shifts),
            rises + (0 if shifts_y is None else shifts_y))


WIDE_X = 10  # a wider search (under half a pitch) to find where the cells really are
RETRACK_BELOW = 0.85  # a line fitting the templates worse than this may be mistracked
# ...and so may a line with two cells fitting worse than this: a line sloping 7 rows over its
# length fit 0.85 on the whole, its last fillers at 0.53 ('9'); a line whose left end the stretch
# misplaced (tilt 0.17) fit 0.87, its first cells at 0.43, 0.56 and 0.59 (spec seed 2 frame 128:
# re-tracked, they read 0.93, 0.90, 0.94). A little above the corrector's doubtful cell (0.55).
WEAK_FIT = 0.6


def _mistracked(scores: np.ndarray) -> bool:
    best = scores.max(axis=1)
    return bool(best.mean() < RETRACK_BELOW or np.count_nonzero(best < WEAK_FIT) >= 2)


def classify_line(canvas: np.ndarray, count: int, glyphs: GlyphSet, pitch: float | None = None) -> np.ndarray:
    """Scores per cell and class, each cell searched near its place at the measured pitch."""
    return classify_cells(canvas, count, glyphs, pitch)[0]


def retrack(canvas: np.ndarray, count: int, glyphs: GlyphSet, pitch: float, scores: np.ndarray) -> np.ndarray:
    """A poorly fitting line's scores again with its cells tracked: a card in perspective changes
    the pitch along the line more than :func:`line_canvas` measured, and far cells drift out of
    the narrow search. A wide search finds each cell's offset, a smooth curve through them moves
    the windows, and the line is classified again; the better fit is kept. (Three times the
    work of :func:`classify_line`: only for the zone and direction chosen.)"""
    if not _mistracked(scores):
        return scores
    wide, offsets = classify_cells(canvas, count, glyphs, pitch, search_x=WIDE_X)
    cells = np.arange(count, dtype=np.float32)
    good = wide.max(axis=1) > 0.6
    for _ in range(2):  # a robust quadratic: refit without cells far off the curve
        if good.sum() < count // 2:
            return scores
        curve = np.polyval(np.polyfit(cells[good], offsets[good], 2), cells)
        good &= np.abs(offsets - curve) <= 3
    retried, _ = classify_cells(canvas, count, glyphs, pitch, np.round(curve))
    best = retried if retried.max(axis=1).mean() > scores.max(axis=1).mean() else scores
    return _retrack_rows(canvas, count, glyphs, pitch, np.round(curve), best)


def _retrack_rows(canvas: np.ndarray, count: int, glyphs: GlyphSet, pitch: float, shifts: np.ndarray,
                  scores: np.ndarray) -> np.ndarray:
    """The re-tracked line once more with its cells followed up and down: a line still sloping
    after levelling, or converging in perspective, puts its far cells a few rows off, which
    the small fillers ('<', a chevron a third of the cap high) cannot stand (spec corpus: line 1's
    trailing fillers fit '9' or 'S' better). Each cell's best row within +-PAD_Y, a robust
    straight line through them, and the line classified again along it; the better fit is kept."""
    if not _mistracked(scores):
        return scores
    wide, _, rises = located(canvas, count, glyphs, pitch, shifts, search_y=PAD_Y)
    cells = np.arange(count, dtype=np.float32)
    good = wide.max(axis=1) > 0.6
    for _ in range(2):
        if good.sum() < count // 2:
            return scores
        rows = np.polyval(np.polyfit(cells[good], rises[good], 1), cells)
        good &= np.abs(rises - rows) <= 1.5
    retried, _ = classify_cells(canvas, count, glyphs, pitch, shifts, shifts_y=np.round(rows))
    return retried if retried.max(axis=1).mean() > scores.max(axis=1).mean() else scores


# Glyph width over height relative to the templates: a camera at an angle along the line, or a
# line box a little taller than the print (blur, a slope), makes the characters look wider or
# narrower than OCR-B drawn at the box's height; O then reads D, U reads D (spec corpus, tilt
# 0.15-0.17: the names line reads right at 1.08-1.15). See :mod:`agent.idcard.mrz.names`.
WIDTHS = (0.92, 1.0, 1.08, 1.16)


def stretched(canvas: np.ndarray, pitch: float, glyphs: GlyphSet, factor: float) -> tuple[np.ndarray, float]:
    """The line canvas ``factor`` times as wide, its first cell where it was (so cell i stays at
    ``origin + i * pitch``), and the pitch there."""
    if factor == 1.0:
        return canvas, pitch
    wide = cv2.resize(canvas, (max(1, round(canvas.shape[1] * factor)), canvas.shape[0]),
                      interpolation=cv2.INTER_LINEAR)
    origin = SEARCH_X + glyphs.cell_w
    shift = round(origin * factor) - origin
    wide = wide[:, shift:] if shift >= 0 else cv2.copyMakeBorder(wide, 0, 0, -shift, 0, cv2.BORDER_REPLICATE)
    return wide, pitch * factor
