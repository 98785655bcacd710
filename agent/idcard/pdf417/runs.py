"""A levelled PDF417 crop as bar/space runs: every pixel row thresholded against its local
level, its transitions found at sub-pixel positions, all rows at once (numpy, no per-row loop).

The runs are what the sampler reads codewords from: a codeword is eight runs (bar, space, ...)
adding up to 17 modules, found by their widths, so a bar edge's exact place matters more than
any pixel's grey level. A specular glare saturates bars and paper alike: no transitions there,
hence no codeword, which the sampler counts as an erasure.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

# Edge-to-similar-edge distances (a bar and the space after it, ...: ISO/IEC 15438's "e"
# values) of the start pattern (8 1 1 1 1 1 1 3) and of the stop pattern's first 17 modules
# (7 1 1 3 1 1 1 2, then a last bar). Unlike bar and space widths, they do not change when ink
# spread or the threshold makes bars look wider than spaces: both edges move alike.
START = np.float32([9, 2, 2, 2, 2, 2, 4])
STOP = np.float32([8, 2, 4, 4, 2, 2, 3])


@dataclass(frozen=True)
class Edges:
    """All transitions of the crop, row-major: row ``y``, sub-pixel ``x``, and whether a bar
    starts there (light -> dark)."""
    y: np.ndarray
    x: np.ndarray
    dark_start: np.ndarray
    width: int
    step: int = 1  # pixel rows from one edge row to the next
    height: int = 0  # pixel rows of the crop
    origin: float = 0.0  # the pixel row of edge row 0

    def flipped(self) -> "Edges":
        """The same edges in the crop turned half a turn (a symbol upside down), without
        thresholding again: order reversed, x mirrored, bar starts become bar ends."""
        top = self.y.max() if len(self.y) else 0.0
        return Edges(top - self.y[::-1], self.width - self.x[::-1], ~self.dark_start[::-1], self.width, self.step,
                     self.height, self.height - 1 - top * self.step - self.origin)

    def key(self) -> np.ndarray:
        """One sortable number per edge: row then x (rows never overlap: x < width + 2)."""
        return self.y * (self.width + 2.0) + self.x


def edges_of(gray: np.ndarray, window: int, step: int = 2) -> Edges:
    """Transitions where the row, smoothed a little along the bars, crosses its local mean
    (a ``window``-pixel wide box: a few codewords, so uneven light and glare's slope cancel).
    Every ``step``-th pixel row only: a module row is 5 or more pixel rows high in the crops the
    pipeline makes, so half of them still give each codeword several votes at half the cost."""
    g = cv2.GaussianBlur(gray, (1, 5), 0, sigmaY=1.2)[::step].astype(np.float32)
    level = cv2.blur(g, (window | 1, 3))
    diff = g - level  # < 0: bar
    dark = diff < 0
    ys, xs = np.nonzero(dark[:, 1:] != dark[:, :-1])
    left, right = diff[ys, xs], diff[ys, xs + 1]
    frac = np.clip(left / np.where(left == right, 1e-6, left - right), 0.0, 1.0)
    return Edges(ys.astype(np.float64), xs + frac + 0.5, dark[ys, xs + 1], gray.shape[1], step, gray.shape[0])


def windows(edges: Edges, runs: int, wide_first: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """For each edge that starts a bar, the widths of the ``runs`` runs that follow it on its row
    (rows of fewer edges: NaN). Returns (edge indices, widths[n, runs]). With ``wide_first``
    only bars over three times the median run wide (the start and stop patterns' first bars are
    7 and 8 modules, a codeword's at most 6 of 17): a tenth of the work."""
    index = np.flatnonzero(edges.dark_start[:-1])
    if wide_first and len(index):
        first = edges.x[index + 1] - edges.x[index]
        index = index[first > 3 * np.median(np.diff(edges.x))]
    take = index[:, None] + np.arange(runs + 1)[None, :]
    valid = take[:, -1] < len(edges.x)
    take = np.minimum(take, len(edges.x) - 1)
    xs, ys = edges.x[take], edges.y[take]
    widths = np.diff(xs, axis=1)
    widths[~valid | (ys[:, -1] != ys[:, 0])] = np.nan
    return index, widths


def e_values(widths: np.ndarray) -> np.ndarray:
    """Eight runs (n x 8) -> their seven e values in modules, the 17 modules taken as the
    distance from the first bar's leading edge to the next one's (ink spread cancels)."""
    total = widths.sum(axis=1, keepdims=True)
    return (widths[:, :-1] + widths[:, 1:]) * (17.0 / np.where(total > 0, total, np.nan))


def pattern_matches(widths: np.ndarray, pattern: np.ndarray, tolerance: float = 0.5) -> np.ndarray:
    """Rows of ``widths`` (n x 8 runs) whose e values are all within ``tolerance`` modules of
    ``pattern``'s."""
    with np.errstate(invalid="ignore"):
        return np.all(np.abs(e_values(widths) - pattern[None, :]) < tolerance, axis=1)


def _runs_of(code: int) -> list[int]:
    """A 17-bit pattern (first module in the top bit) as its eight run lengths."""
    bits = format(code, "017b")
    lengths, count = [], 1
    for before, after in zip(bits, bits[1:]):
        if before == after:
            count += 1
        else:
            lengths.append(count)
            count = 1
    return lengths + [count]


def _e_key(e: np.ndarray) -> np.ndarray:
    """Six e values (2..9 each) -> one index in 0..8^6."""
    return ((e - 2) * (8 ** np.arange(6))).sum(axis=-1)


@lru_cache(maxsize=1)
def codeword_table() -> np.ndarray:
    """The first six e values of a codeword -> cluster * 929 + codeword (-1: none), built from
    pdf417gen's encoder tables. Six e values name one codeword of all three clusters (checked
    over the 2787 patterns: no two share them), so a misread rarely lands on another one."""
    from pdf417gen.codes import CODES

    table = np.full(8 ** 6, -1, np.int32)
    for cluster, codes in enumerate(CODES):
        widths = np.asarray([_runs_of(code) for code in codes])
        e = widths[:, :-1] + widths[:, 1:]
        table[_e_key(e[:, :6])] = cluster * 929 + np.arange(len(codes))
    return table


def lookup(widths: np.ndarray) -> np.ndarray:
    """Eight run widths (pixels, n x 8, bar first; NaN: none) -> cluster * 929 + codeword, or -1."""
    with np.errstate(invalid="ignore"):
        e = np.rint(np.nan_to_num(e_values(widths)[:, :6], nan=0.0)).astype(np.int64)
        ok = np.all((e >= 2) & (e <= 9), axis=1)
    found = codeword_table()[np.where(ok, _e_key(np.clip(e, 2, 9)), 0)]
    return np.where(ok, found, -1)
