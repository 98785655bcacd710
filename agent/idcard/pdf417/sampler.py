"""A levelled PDF417 crop -> its codeword matrix, with a vote per codeword over every pixel row
that crosses it and an erasure wherever the vote is not clear.

The start and stop patterns give each pixel row the symbol's left and right ends (a line fitted
through all rows that show them, so rows under glare get them too) and the module width; the
row indicators give the row count, the column count and the EC level, and each row's number
(cluster and indicator value together), from which the rows' slope and pitch are fitted. Each
codeword is then read where the grid puts it, as eight runs from the bar edge nearest its
expected start (:mod:`agent.idcard.pdf417.runs`), and looked up in its cluster's table; then
read again where the codewords of its column were actually found (a line in y per column: the
grid's perspective, from the patterns' module widths, bows the middle columns by up to a
module). Cells no scanline read get a guess from their grey profile
(:mod:`agent.idcard.pdf417.templates`) for a second try of error correction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent.idcard.pdf417 import runs, templates
from agent.idcard.pdf417.runs import Edges


@dataclass(frozen=True)
class Grid:
    start: tuple[float, float]  # x of the start pattern's left edge = a + b * y
    stop: tuple[float, float]  # x of the stop pattern's left edge = a + b * y
    left_module: float  # median module width (pixels) of the start pattern
    right_module: float  # and of the stop pattern: they differ under perspective

    @property
    def module(self) -> float:
        return (self.left_module + self.right_module) / 2

    def left(self, ys: np.ndarray) -> np.ndarray:
        return self.start[0] + self.start[1] * ys

    def right(self, ys: np.ndarray) -> np.ndarray:
        return self.stop[0] + self.stop[1] * ys

    def columns_at(self, ys: np.ndarray, columns: int, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x of each slot's first module (slot 0: the left row indicator) on rows ``ys`` and the
        module width there (rows x slots). A tilted card's modules shrink towards its far end, so
        modules map to pixels projectively (x = x0 + A u / (1 + B u)), B from the start and stop
        patterns' module widths (their ratio is (1 + B U)^2), A from the ends' distance."""
        total = 17 * columns + 51
        b = (np.sqrt(self.left_module / self.right_module) - 1) / total
        x0 = self.left(ys)[:, None]
        a = (self.right(ys)[:, None] - x0) * (1 + b * total) / total
        u = 17.0 * (1 + slots[None, :])
        return x0 + a * u / (1 + b * u), a / (1 + b * u) ** 2


@dataclass(frozen=True)
class Matrix:
    rows: int
    columns: int
    level: int
    codewords: list[int]  # rows * columns, row-major; -1 where erased
    erasures: list[int]
    guesses: list[int] | None = None  # per cell, the value most scanlines read (-1: none or a tie)

    @property
    def ec_count(self) -> int:
        """Error-correction codewords at the symbol's level."""
        return 2 ** (self.level + 1)


def _robust_line(ys: np.ndarray, xs: np.ndarray, tolerance: float) -> tuple[float, float] | None:
    """x = a + b * y through the points, refitted without those off it by more than
    ``tolerance``; ``None`` for fewer than three points."""
    keep = np.abs(xs - np.median(xs)) < 4 * tolerance
    for _ in range(3):
        if keep.sum() < 3:
            return None
        b, a = np.polyfit(ys[keep], xs[keep], 1) if np.ptp(ys[keep]) > 0 else (0.0, float(np.median(xs[keep])))
        keep = np.abs(xs - (a + b * ys)) < tolerance
    return (float(a), float(b)) if keep.sum() >= 3 else None


def find_grid(edges: Edges) -> Grid | None:
    """Start and stop lines and the module width, or ``None`` without both patterns."""
    index, widths8 = runs.windows(edges, 8, wide_first=True)
    starts = runs.pattern_matches(widths8, runs.START)
    stops = runs.pattern_matches(widths8, runs.STOP)
    if starts.sum() < 3 or stops.sum() < 3:
        return None
    left_module = float(np.median(widths8[starts].sum(axis=1) / 17))
    right_module = float(np.median(widths8[stops].sum(axis=1) / 17))
    module = (left_module + right_module) / 2
    start_x = edges.x[index[starts]]
    stop_x = edges.x[index[stops]]
    start = _robust_line(edges.y[index[starts]], start_x, 1.5 * module)
    stop = _robust_line(edges.y[index[stops]], stop_x, 1.5 * module)
    if start is None or stop is None:
        return None
    return Grid(start, stop, left_module, right_module)


def read_at(edges: Edges, ys: np.ndarray, xs: np.ndarray, module: np.ndarray) -> np.ndarray:
    """The codeword (cluster * 929 + value, or -1) whose first bar starts nearest ``xs`` on rows
    ``ys`` (within a module), eight runs adding up to about 17 ``module``."""
    return _read_near(edges, ys, xs, module)[0]


def _read_near(edges: Edges, ys: np.ndarray, xs: np.ndarray, module: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_at`, and how far (pixels) the bar start it read from lies from ``xs``."""
    starts = np.flatnonzero(edges.dark_start)
    if len(starts) == 0:
        return np.full(len(xs), -1), np.zeros(len(xs))
    keys = edges.key()[starts]
    wanted = ys * (edges.width + 2.0) + xs
    pos = np.clip(np.searchsorted(keys, wanted), 1, len(keys) - 1) if len(keys) > 1 else np.zeros(len(xs), int)
    before, after = keys[pos - 1], keys[pos]
    pos = np.where(np.abs(wanted - before) < np.abs(after - wanted), pos - 1, pos)
    near = np.abs(keys[pos] - wanted) < module
    first = starts[pos]
    take = np.minimum(first[:, None] + np.arange(9)[None, :], len(edges.x) - 1)
    widths = np.diff(edges.x[take], axis=1)
    total = widths.sum(axis=1)
    ok = near & (edges.y[take[:, -1]] == ys) & (np.abs(total - 17 * module) < 2.5 * module)
    found = runs.lookup(np.where(ok[:, None], widths, np.nan))
    return np.where(ok, found, -1), keys[pos] - wanted


def _indicators(edges: Edges, grid: Grid) -> tuple[np.ndarray, ...]:
    """Left and right row indicators on every pixel row: (ys, left, right, x_left, x_right),
    codewords as cluster * 929 + value or -1, and where each was read."""
    ys = np.arange(int(edges.y.max()) + 1, dtype=np.float64) if len(edges.y) else np.zeros(0)
    x_left = grid.left(ys) + 17 * grid.left_module
    x_right = grid.right(ys) - 17 * grid.right_module
    return (ys, read_at(edges, ys, x_left, np.full(len(ys), grid.left_module)),
            read_at(edges, ys, x_right, np.full(len(ys), grid.right_module)), x_left, x_right)


def _layout(left: np.ndarray, right: np.ndarray) -> tuple[int, int, int] | None:
    """(rows, columns, level) voted from the row indicators' cluster-specific values."""
    fields: dict[str, list[int]] = {"rows3": [], "rowsmod": [], "cols": []}
    names = {0: ("rows3", "cols"), 1: ("rowsmod", "rows3"), 2: ("cols", "rowsmod")}  # (left, right)
    for side, found in enumerate((left, right)):
        good = found[found >= 0]
        for cluster in range(3):
            values = good[good // 929 == cluster] % 929 % 30
            fields[names[cluster][side]].extend(int(v) for v in values)
    rows3, rowsmod, cols = (_vote(fields[k]) for k in ("rows3", "rowsmod", "cols"))
    if min(rows3, rowsmod, cols) < 0:
        return None
    rows, level = 3 * rows3 + rowsmod % 3 + 1, rowsmod // 3
    if not (3 <= rows <= 90 and 1 <= cols + 1 <= 30 and level <= 8):
        return None
    return rows, cols + 1, level


def _row_model(ys: np.ndarray, xs: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """Coefficients of y = c0 + c1 x + (row + 0.5) (c2 + c3 x) (rows slant and their pitch
    changes along a tilted symbol), fitted to the rows the indicators name, refitted without
    the readings more than a third of a row off. Without spread in x: c1 = c3 = 0."""
    centre = rows + 0.5
    spread = np.ptp(xs) > 0 if len(xs) else False
    design = np.stack([np.ones_like(xs), xs, centre, centre * xs] if spread else
                      [np.ones_like(xs), np.zeros_like(xs), centre, np.zeros_like(xs)], axis=1)
    keep = np.ones(len(ys), bool)
    coef = None
    for _ in range(3):
        if keep.sum() < 6:
            return None
        coef = np.linalg.lstsq(design[keep], ys[keep], rcond=None)[0]
        pitch = coef[2] + coef[3] * xs
        keep = np.abs(design @ coef - ys) < np.abs(pitch) / 3
    return coef


def _rows_of(coef: np.ndarray, xs: np.ndarray, ys: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """Row number of each reading at (xs, ys) from the row model, the nearer neighbour row when
    the codeword's own cluster says so (row boundaries), -1 when neither fits."""
    frac = (ys - coef[0] - coef[1] * xs) / (coef[2] + coef[3] * xs) - 0.5
    nearest = np.rint(frac)
    other = nearest + np.where(frac > nearest, 1, -1)
    row = np.where(nearest % 3 == clusters, nearest, -1)
    row = np.where((row < 0) & (other % 3 == clusters) & (np.abs(frac - other) < 0.75), other, row)
    return row.astype(np.int64)


def _indicator_rows(ys: np.ndarray, left: np.ndarray, right: np.ndarray,
                    x_left: np.ndarray, x_right: np.ndarray) -> tuple[np.ndarray, ...]:
    """(y, x, row) of every row indicator read: row = 3 * (value // 30) + cluster."""
    xs, yy, rows = [], [], []
    for found, x in ((left, x_left), (right, x_right)):
        ok = found >= 0
        xs.append(x[ok])
        yy.append(ys[ok])
        rows.append(3 * (found[ok] % 929 // 30) + found[ok] // 929)
    return np.concatenate(yy), np.concatenate(xs), np.concatenate(rows).astype(np.float64)


def _votes(cells: np.ndarray, values: np.ndarray, count: int, strict: bool = True) -> np.ndarray:
    """Per cell, the value most rows read, when at least two did and at least twice as many as
    read any other; else -1 (an erasure). Not ``strict``: any value more rows read than any
    other (a guess, for a second try of error correction)."""
    out = np.full(count, -1, np.int64)
    if len(cells) == 0:
        return out
    uniq, counts = np.unique(cells * 1000 + values, return_counts=True)
    cell, value = uniq // 1000, uniq % 1000
    order = np.lexsort((-counts, cell))
    cell, value, counts = cell[order], value[order], counts[order]
    first = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
    second = np.where((first + 1 < len(cell)) & (np.r_[cell, -1][first + 1] == cell[first]),
                      np.r_[counts, 0][first + 1], 0)
    sure = (counts[first] >= 2) & (counts[first] >= 2 * second) if strict else counts[first] > second
    out[cell[first][sure]] = value[first][sure]
    return out


def _vote(values: list[int]) -> int:
    """One field's value by :func:`_votes`'s rule (the row indicators' votes), or -1."""
    return int(_votes(np.zeros(len(values), np.int64), np.asarray(values, np.int64), 1)[0])


def _sample(edges: Edges, coef: np.ndarray, rows: int, ys: np.ndarray, xs: np.ndarray,
            module: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The codewords read at (xs, ys): (row, codeword, shift), row -1 where none was read or its
    cluster fits no row of the symbol there; shift as :func:`_read_near`'s."""
    found, shift = _read_near(edges, ys, xs, module)
    row = np.full(len(found), -1, np.int64)
    ok = found >= 0
    row[ok] = _rows_of(coef, xs[ok], ys[ok], found[ok] // 929)
    row[row >= rows] = -1
    return row, found, shift


def _column_drift(ys: np.ndarray, column: np.ndarray, shift: np.ndarray, good: np.ndarray,
                  columns: int, module: float) -> tuple[np.ndarray, np.ndarray]:
    """Per column, how far its codewords were found from where the grid put them: a line
    shift = a + b y (returned as arrays a, b) through the shifts of the codewords read, refitted without those more
    than a third of a module off it. The grid's columns bow by up to a module in the middle of
    wide symbols (the perspective taken from the start and stop patterns' module widths is off
    by their noise), and that is where the nearest-edge search picks the wrong bar. Columns with
    fewer than six reads take their neighbours' lines."""
    c, y, s = column[good], ys[good], shift[good]
    keep = np.ones(len(c), bool)
    a = b = np.full(columns, np.nan)
    for _ in range(2):
        a, b = _lines(c[keep], y[keep], s[keep], columns)
        if np.all(np.isnan(a)):
            return np.zeros(columns), np.zeros(columns)
        fit = np.nan_to_num(a[c] + b[c] * y, nan=1e9)
        keep = np.abs(s - fit) < module / 3
    known = np.flatnonzero(~np.isnan(a))
    every = np.arange(columns)
    return np.interp(every, known, a[known]), np.interp(every, known, b[known])


def _lines(c: np.ndarray, y: np.ndarray, s: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares s = a + b y for each group ``c`` at once (NaN for fewer than six points;
    b = 0 where y does not vary)."""
    def total(w: np.ndarray | None) -> np.ndarray:
        return np.bincount(c, w, minlength=columns)[:columns]
    n, sy, ss, syy, sys_ = total(None), total(y), total(s), total(y * y), total(y * s)
    with np.errstate(invalid="ignore", divide="ignore"):
        den = n * syy - sy * sy
        b = np.where(den > 1e-9 * np.maximum(n * syy, 1), (n * sys_ - sy * ss) / den, 0.0)
        a = (ss - b * sy) / n
    few = n < 6
    return np.where(few, np.nan, a), np.where(few, np.nan, b)


def _match_erased(image: np.ndarray, edges: Edges, grid: Grid, coef: np.ndarray,
                  drift: tuple[np.ndarray, np.ndarray], cells: np.ndarray, columns: int) -> np.ndarray:
    """``cells`` (values, -1 where none) with the empty ones read by :func:`templates.match`
    (-1 where it is not sure).
    Each cell's place: its row's centre line from the row model, its column's start from the
    grid and the column's drift (two rounds, as each depends on the other)."""
    empty = np.flatnonzero(cells < 0)
    if len(empty) == 0:
        return cells
    row, col = empty // columns, empty % columns
    slots = np.arange(1, columns + 1)
    x = np.full(len(empty), (grid.left(np.zeros(1))[0] + grid.right(np.zeros(1))[0]) / 2)
    for _ in range(2):
        pitch = coef[2] + coef[3] * x
        y = coef[0] + coef[1] * x + (row + 0.5) * pitch
        xs, modules = grid.columns_at(y, columns, slots)
        start = xs[np.arange(len(empty)), col] + drift[0][col] + drift[1][col] * y
        module = modules[np.arange(len(empty)), col]
        x = start + 8.5 * module
    found = templates.match(templates.profiles(image, edges.origin + edges.step * y, edges.step * pitch, start,
                                               module), row % 3)
    out = cells.copy()
    out[empty] = found
    return out


def read_matrix(edges: Edges, image: np.ndarray | None = None) -> Matrix | None:
    """The symbol's codeword matrix from a levelled crop's edges (start pattern on the left),
    or ``None`` when its geometry or layout is not found. With the crop itself (``image``, the
    same way up as ``edges``), cells no scanline read get a guess from their grey profile
    (:mod:`agent.idcard.pdf417.templates`)."""
    grid = find_grid(edges)
    if grid is None:
        return None
    ys, left, right, x_left, x_right = _indicators(edges, grid)
    layout = _layout(left, right)
    if layout is None:
        return None
    rows, columns, level = layout
    coef = _row_model(*_indicator_rows(ys, left, right, x_left, x_right))
    if coef is None:
        return None
    mean_module = (grid.right(ys) - grid.left(ys)) / (17 * columns + 51)
    if np.any(np.abs(mean_module - grid.module) > 0.15 * grid.module):
        return None  # the column count does not fit the start and stop patterns' distance
    slots = np.arange(1, columns + 1)
    yy = np.repeat(ys, columns)
    column = np.tile(slots - 1, len(ys))
    xs, modules = grid.columns_at(ys, columns, slots)
    xx, mm = xs.ravel(), modules.ravel()
    row, found, shift = _sample(edges, coef, rows, yy, xx, mm)
    drift = _column_drift(yy, column, shift, row >= 0, columns, grid.module)
    again, found_again, _ = _sample(edges, coef, rows, yy, xx + drift[0][column] + drift[1][column] * yy, mm)
    use = again >= 0
    row, found = np.where(use, again, row), np.where(use, found_again, found)
    good = row >= 0
    cells, values = row[good] * columns + column[good], found[good] % 929
    codewords = [int(v) for v in _votes(cells, values, rows * columns)]
    guesses = _votes(cells, values, rows * columns, strict=False)
    if image is not None:
        strict = np.asarray(codewords)
        matched = _match_erased(image, edges, grid, coef, drift, strict, columns)
        # A cell no scanline read takes its profile's pattern; one some scanlines read keeps
        # their best guess unless the profile clearly says otherwise (then it is erased).
        guesses = np.where(guesses < 0, matched, np.where((matched >= 0) & (matched != guesses), -1, guesses))
    guesses = [int(v) for v in guesses]
    return Matrix(rows, columns, level, codewords, [i for i, v in enumerate(codewords) if v < 0], guesses)
