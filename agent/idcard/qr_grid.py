"""Read a QR code whose finder patterns were found but whose modules zxing-cpp could not sample.

With modules of 2-2.5 camera pixels under a blur of sigma ~1.2, or part of the symbol under a
glare blob, zxing-cpp often finds the three finder patterns and the version (it reports a
checksum error with the symbol's corners) but its binarizer, which knows nothing of the module
grid, gets too many modules wrong. Here the grid is known: the symbol's four outer corners and
its version give every module centre. The symbol is warped to a fixed number of pixels a module,
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


def module_means(gray: np.ndarray, corners: np.ndarray, version: int, blur_sigma: float | None) -> np.ndarray:
    """Mean grey of each module's central half, the symbol warped to ``PX`` pixels a module and,
    when ``blur_sigma`` (frame pixels) is given, deconvolved at that blur."""
    size = 17 + 4 * version
    margin = 2  # modules of context around the symbol, so the deconvolution has no edge at it
    side = (size + 2 * margin) * PX
    dst = np.float32([[0, 0], [size, 0], [size, size], [0, size]]) * PX + margin * PX
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    warped = cv2.warpPerspective(gray, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if blur_sigma:
        module_px = float(np.mean([np.linalg.norm(corners[i] - corners[(i + 1) % 4]) for i in range(4)])) / size
        warped = wiener(warped, blur_sigma * PX / max(module_px, 0.5))
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
                  blur_sigmas: tuple[float | None, ...] = (None, 1.0), window: int = 7) -> Iterator[np.ndarray]:
    """Re-rendered symbols from the grid at ``corners`` (outer corners of the symbol, in its own
    orientation: the finders at top-left, top-right, bottom-left), one per deconvolution tried."""
    fixed, fixed_dark = function_patterns(version)
    for sigma in blur_sigmas:
        dark = threshold_modules(module_means(gray, corners, version, sigma), window)
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


def fit_grid(gray: np.ndarray, quad: np.ndarray, module_px: tuple[float, float] = (1.8, 5.0),
             min_score: float = 0.6) -> tuple[np.ndarray, int] | None:
    """The QR grid (outer corners in the symbol's orientation, version) that best explains the
    patterns the standard fixes, starting from ``quad`` (a blob's rough corners, any order and
    rotation): every version whose modules would measure ``module_px`` and every orientation is
    scored, the best two are refined corner by corner (steps of half then a quarter of a module),
    and the best is returned if its correlation reaches ``min_score`` (else ``None``: not a QR
    code, or not one this can place)."""
    center = quad.mean(axis=0)
    order = np.argsort(np.arctan2(quad[:, 1] - center[1], quad[:, 0] - center[0]))
    quad = quad[order].astype(np.float32)  # clockwise in image coordinates
    side = float(np.mean([np.linalg.norm(quad[i] - quad[(i + 1) % 4]) for i in range(4)]))
    smooth = cv2.GaussianBlur(gray, (0, 0), 0.7).astype(np.float32)
    scored = []
    for version in range(1, 41):
        size = 17 + 4 * version
        if not module_px[0] <= side / size <= module_px[1]:
            continue
        patterns = _patterns(version)
        for turn in range(4):
            corners = np.roll(quad, -turn, axis=0)
            scored.append((_pattern_score(smooth, corners, version, patterns), turn, version, patterns))
    scored.sort(key=lambda item: -item[0])
    best: tuple[float, np.ndarray, int] | None = None
    for score, turn, version, patterns in scored[:2]:
        corners = np.roll(quad, -turn, axis=0).copy()
        module = side / (17 + 4 * version)
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
                            break
        if best is None or score > best[0]:
            best = (score, corners, version)
    if best is None or best[0] < min_score:
        return None
    return best[1], best[2]
