"""Read a QR code on its module grid when zxing-cpp cannot sample its modules.

With modules of 2-2.5 camera pixels under a blur of sigma ~1.2, or part of the symbol under a
glare blob, zxing-cpp either finds the three finder patterns and the version but gets too many
modules wrong (it reports a checksum error with the symbol's corners: :func:`hint_of`), or does
not find the finders at all; :func:`fit_grid` then finds them itself, by template matching in a
candidate blob, and fits the grid to the patterns the standard fixes. Either way the grid is
known: the symbol's four outer corners and its version give every module centre. The symbol is warped to a fixed number of pixels a module,
deconvolved (Wiener, at the camera's blur scaled to that grid), each module's centre averaged and
compared with its neighbourhood (which follows a glare blob's added light), the patterns the
standard fixes for that version (finders, timing, alignment, version information) are drawn in,
and the clean symbol is read again with ``is_pure``. Reed-Solomon still checks every codeword, so
a wrong module costs error correction, never a wrong read.
"""
from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import zxingcpp

from agent.idcard.deblur import wiener

MAX_SIDE_MODULES = 81  # version 16: ID cards carry far smaller QR codes
# The finder search runs at the frame's scale: at 2x it placed no more of corpus C's QR misses
# (seeds 11-14) and cost twice the CPU.
SEARCH_UP = 1.0
PX = 8  # warped pixels a module: enough to average a module's centre away from its edges


def alignment_positions(version: int) -> list[int]:
    """Row/column centres of the alignment patterns (ISO 18004 table E.1, as a formula)."""
    if version == 1:
        return []
    count = version // 7 + 2
    size = 17 + 4 * version
    step = 26 if version == 32 else (version * 4 + count * 2 + 1) // (2 * count - 2) * 2
    return [6] + [size - 7 - (count - 2 - i) * step for i in range(count - 1)]


def function_patterns(version: int) -> tuple[np.ndarray, np.ndarray]:
    """(fixed, dark): which modules the standard fixes for this version, and their colour. Format
    information is left out: it is data-dependent (the mask), and zxing-cpp corrects up to three
    wrong bits of it."""
    size = 17 + 4 * version
    fixed = np.zeros((size, size), bool)
    dark = np.zeros((size, size), bool)
    fixed[6, :] = fixed[:, 6] = True  # timing: dark on even indices
    dark[6, ::2] = dark[::2, 6] = True
    finder = np.zeros((7, 7), bool)
    finder[[0, 6], :] = finder[:, [0, 6]] = True
    finder[2:5, 2:5] = True
    for r, c in ((0, 0), (0, size - 7), (size - 7, 0)):
        r0, c0 = max(r - 1, 0), max(c - 1, 0)
        fixed[r0:r + 8, c0:c + 8] = True  # finder and its light separator
        dark[r0:r + 8, c0:c + 8] = False
        dark[r:r + 7, c:c + 7] = finder
    centres = alignment_positions(version)
    last = centres[-1] if centres else 0
    pattern = np.ones((5, 5), bool)
    pattern[1:4, 1:4] = False
    pattern[2, 2] = True
    for r in centres:
        for c in centres:
            if (r, c) in ((6, 6), (6, last), (last, 6)):
                continue
            fixed[r - 2:r + 3, c - 2:c + 3] = True
            dark[r - 2:r + 3, c - 2:c + 3] = pattern
    if version >= 7:
        remainder = version
        for _ in range(12):
            remainder = (remainder << 1) ^ ((remainder >> 11) * 0x1F25)
        bits = version << 12 | remainder
        for i in range(18):
            a, b = size - 11 + i % 3, i // 3
            fixed[b, a] = fixed[a, b] = True
            dark[b, a] = dark[a, b] = bool(bits >> i & 1)
    fixed[size - 8, 8] = dark[size - 8, 8] = True  # the dark module
    return fixed, dark


Deblur = tuple[float, float] | None  # (Gaussian sigma in image pixels, Wiener noise-to-signal ratio)


def module_means(gray: np.ndarray, corners: np.ndarray, version: int, deblur: Deblur) -> np.ndarray:
    """Mean grey of each module's central half, the symbol warped to ``PX`` pixels a module and,
    when ``deblur`` is given, deconvolved at that blur (sigma in ``gray``'s pixels)."""
    size = 17 + 4 * version
    margin = 2  # modules of context around the symbol, so the deconvolution has no edge at it
    side = (size + 2 * margin) * PX
    dst = np.float32([[0, 0], [size, 0], [size, size], [0, size]]) * PX + margin * PX
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    warped = cv2.warpPerspective(gray, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if deblur is not None:
        module_px = float(np.mean([np.linalg.norm(corners[i] - corners[(i + 1) % 4]) for i in range(4)])) / size
        warped = wiener(warped, deblur[0] * PX / max(module_px, 0.5), deblur[1])
    inner = warped[margin * PX:(margin + size) * PX, margin * PX:(margin + size) * PX].astype(np.float32)
    q = PX // 4
    return inner.reshape(size, PX, size, PX)[:, q:PX - q, :, q:PX - q].mean(axis=(1, 3))


def threshold_modules(means: np.ndarray, window: int = 7) -> np.ndarray:
    """Dark modules: darker than the mean of the ``window`` x ``window`` modules around them. A
    local mean follows a glare blob (added light) and a light gradient across the symbol."""
    return means < cv2.blur(means, (window, window), borderType=cv2.BORDER_REFLECT)


def render(dark: np.ndarray, scale: int = 3) -> np.ndarray:
    """The module matrix as a clean image with a four-module quiet zone."""
    image = np.where(dark, 0, 255).astype(np.uint8)
    image = cv2.copyMakeBorder(image, 4, 4, 4, 4, cv2.BORDER_CONSTANT, value=255)
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def clean_symbols(gray: np.ndarray, corners: np.ndarray, version: int,
                  deblurs: tuple[Deblur, ...] = (None, (1.0, 0.01)), window: int = 7) -> Iterator[np.ndarray]:
    """Re-rendered symbols from the grid at ``corners`` (outer corners of the symbol, in its own
    orientation: the finders at top-left, top-right, bottom-left), one per deconvolution tried."""
    fixed, fixed_dark = function_patterns(version)
    for deblur in deblurs:
        dark = threshold_modules(module_means(gray, corners, version, deblur), window)
        yield render(np.where(fixed, fixed_dark, dark))


def hint_of(result: zxingcpp.Barcode) -> list[tuple[np.ndarray, int]]:
    """[(corners, version)] for a QR code zxing-cpp located but could not decode, else []."""
    version = (result.extra or {}).get("Version", "")
    if result.valid or not version.isdigit():  # "M3", "R11x43": Micro or rectangular QR, not ours
        return []
    p = result.position
    return [(np.float32([[c.x, c.y] for c in (p.top_left, p.top_right, p.bottom_right, p.bottom_left)]),
             int(version))]


def _pattern_score(smooth: np.ndarray, corners: np.ndarray, version: int,
                   patterns: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    """Correlation between the grey at the centres of the modules the standard fixes and their
    colour, the symbol's grid placed at ``corners``: near 1 when grid, version and orientation
    are right, near 0 otherwise (the timing rows alternate every module, so a grid off by half a
    module or a wrong version scores low)."""
    size = 17 + 4 * version
    centres, light, _ = patterns
    matrix = cv2.getPerspectiveTransform(np.float32([[0, 0], [size, 0], [size, size], [0, size]]),
                                         corners.astype(np.float32))
    points = cv2.perspectiveTransform(centres, matrix)
    values = cv2.remap(smooth, points[:, :, 0], points[:, :, 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE).ravel()
    spread = values.std()
    return 0.0 if spread < 1e-3 else float(((values - values.mean()) * light).mean() / spread)


def _patterns(version: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    fixed, dark = function_patterns(version)
    rows, cols = np.nonzero(fixed)
    centres = np.float32(np.stack([cols + 0.5, rows + 0.5], axis=1))[:, None, :]
    light = (~dark[rows, cols]).astype(np.float32)
    return centres, (light - light.mean()) / light.std(), fixed


def _finder_template(module: float) -> np.ndarray:
    """A finder pattern with its light separator (9 x 9 modules) at ``module`` pixels a module,
    drawn at 8x and area-averaged down so fractional module sizes are exact."""
    cells = np.ones((9, 9), np.float32)
    cells[1:8, 1:8] = 0.0
    cells[2:7, 2:7] = 1.0
    cells[3:6, 3:6] = 0.0
    side = max(9, round(9 * module))
    big = cv2.resize(cells, (side * 8, side * 8), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(big, (side, side), interpolation=cv2.INTER_AREA)


def find_finders(crop: np.ndarray, module_px: tuple[float, float], peaks: int = 6
                 ) -> list[tuple[float, float, float, float]]:
    """(x, y, score, module) of the best finder-pattern matches in ``crop`` (normalised
    cross-correlation with templates at module sizes spanning ``module_px``), at least six
    modules apart."""
    source = crop.astype(np.float32)
    best = np.full(crop.shape, -1.0, np.float32)
    best_module = np.zeros(crop.shape, np.float32)
    module = module_px[0]
    while module <= module_px[1]:
        template = _finder_template(module)
        if template.shape[0] < min(crop.shape):
            response = cv2.matchTemplate(source, template, cv2.TM_CCOEFF_NORMED)
            half = template.shape[0] // 2
            window = best[half:half + response.shape[0], half:half + response.shape[1]]
            better = response > window
            window[better] = response[better]
            best_module[half:half + response.shape[0], half:half + response.shape[1]][better] = module
        module *= 1.12
    found = []
    work = best.copy()
    for _ in range(peaks):
        _, score, _, (x, y) = cv2.minMaxLoc(work)
        if score <= 0.2:
            break
        module = float(best_module[y, x])
        found.append((float(x), float(y), float(score), module))
        cv2.circle(work, (x, y), max(3, round(6 * module)), -1.0, -1)
    return found


def _finder_triples(found: list[tuple[float, float, float, float]]) -> list[tuple[float, np.ndarray, float]]:
    """(score, [top-left, top-right, bottom-left] centres, module) of finder triples that form
    the symbol's L: equal legs at a right angle, top-right clockwise of bottom-left."""
    triples = []
    for corner in found:
        for a in found:
            for b in found:
                if len({id(corner), id(a), id(b)}) < 3:
                    continue
                c = np.float32(corner[:2])
                u, w = np.float32(a[:2]) - c, np.float32(b[:2]) - c
                lu, lw = float(np.linalg.norm(u)), float(np.linalg.norm(w))
                if min(lu, lw) < 1e-3 or abs(lu - lw) > 0.2 * max(lu, lw):
                    continue
                cross = float(u[0] * w[1] - u[1] * w[0]) / (lu * lw)  # sin of the angle, > 0: clockwise
                if cross < 0.9:
                    continue
                module = (corner[3] + a[3] + b[3]) / 3
                triples.append((corner[2] + a[2] + b[2], np.float32([corner[:2], a[:2], b[:2]]), module))
    triples.sort(key=lambda t: -t[0])
    return triples


def fit_grid(gray: np.ndarray, quad: np.ndarray, module_px: tuple[float, float] = (1.8, 5.0),
             min_score: float = 0.3, min_start: float = 0.2) -> tuple[np.ndarray, int] | None:
    """The QR grid (outer corners in the symbol's orientation, version) inside the blob ``quad``:
    its three finder patterns found by template matching in a levelled, 2x upscaled window
    around the blob, the version from their distance, the fourth corner from the other three,
    then the four corners refined (steps of half then a quarter of a module) to best match the
    patterns the standard fixes (finders, timing, alignment). ``None`` when no finder triple is
    found or the best grid's correlation stays under ``min_score`` (not a QR code, or not one
    this can place)."""
    center = quad.mean(axis=0)
    pts = quad[np.argsort(np.arctan2(quad[:, 1] - center[1], quad[:, 0] - center[0]))].astype(np.float32)
    sides = [float(np.linalg.norm(pts[i] - pts[(i + 1) % 4])) for i in range(4)]
    # A QR code is square: its blob, seen at the specification's tilt, is within ~1.4:1 (a wide
    # PDF417 or a text block is not); and no larger than the largest symbol at the largest module.
    if max(sides) > MAX_SIDE_MODULES * module_px[1] or max(sides) > 1.4 * min(sides):
        return None
    pts = center + (pts - center) * 1.35  # room for finders the blob cut
    up = SEARCH_UP
    width = float(max(np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[2] - pts[3]))) * up
    height = float(max(np.linalg.norm(pts[3] - pts[0]), np.linalg.norm(pts[2] - pts[1]))) * up
    out_w, out_h = max(16, round(width)), max(16, round(height))
    matrix = cv2.getPerspectiveTransform(pts, np.float32([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]]))
    crop = cv2.warpPerspective(gray, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inverse = np.linalg.inv(matrix).astype(np.float32)
    smooth = cv2.GaussianBlur(gray, (0, 0), 0.7).astype(np.float32)
    starts = []
    for _, centres, module in _finder_triples(find_finders(crop, (module_px[0] * up, module_px[1] * up)))[:2]:
        tl, tr, bl = centres
        legs = (float(np.linalg.norm(tr - tl)) + float(np.linalg.norm(bl - tl))) / 2
        nominal = round((legs / module + 7 - 17) / 4)
        for version in range(max(1, nominal - 1), min(40, nominal + 1) + 1):
            span = 17 + 4 * version - 7  # modules between finder centres
            u, w = (tr - tl) / span, (bl - tl) / span
            corners_crop = np.float32([tl - 3.5 * (u + w), tr + 3.5 * (u - w), tr + (bl - tl) + 3.5 * (u + w),
                                       bl + 3.5 * (w - u)])
            corners = cv2.perspectiveTransform(corners_crop[None], inverse)[0]
            starts.append((_pattern_score(smooth, corners, version, _patterns(version)), corners, version))
    if not starts:
        return None
    # Only the best start is refined: refining costs ~100 score evaluations, and a wrong version
    # or a false triple already scores far below the right one before refinement.
    start_score, corners, version = max(starts, key=lambda item: item[0])
    if start_score < min_start:
        return None
    corners, score = _refine(smooth, corners, version)
    best = (score, corners, version)
    if best is None or best[0] < min_score:
        return None
    return best[1], best[2]


def _refine(smooth: np.ndarray, corners: np.ndarray, version: int) -> tuple[np.ndarray, float]:
    """Corners moved one coordinate at a time while the pattern score improves."""
    patterns = _patterns(version)
    score = _pattern_score(smooth, corners, version, patterns)
    module = float(np.mean([np.linalg.norm(corners[i] - corners[(i + 1) % 4]) for i in range(4)])) / (17 + 4 * version)
    for step in (0.5 * module, 0.25 * module):
        improved = True
        while improved:
            improved = False
            for index in range(8):
                for sign in (1.0, -1.0):
                    trial = corners.copy()
                    trial.reshape(-1)[index] += sign * step
                    trial_score = _pattern_score(smooth, trial, version, patterns)
                    if trial_score > score + 1e-4:
                        corners, score, improved = trial, trial_score, True
    return corners, score
