"""Find a machine readable zone in a camera frame at any angle and level it.

Dark text on a light card: a black-hat filter keeps strokes thinner than its kernel whatever
their direction. Closing that mask with a kernel larger than the gaps between characters and
lines turns the MRZ into one block, 2-6 times longer than high (3 lines of 30 characters or 2 of
44); its minimum-area rectangle gives the reading direction up to 180 degrees, which the reader
settles by trying both. The block is then warped level at a scale where a character is about
:data:`TARGET_CAP` pixels high, and split into text lines by row projection.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

WORK_WIDTH = 960
TARGET_CAP = 30  # character height in the levelled block, px (templates are matched at 24)
LOCAL_FLOOR = 0.25  # a faint stroke: at least this share of the global ink threshold...
LOCAL_SHARE = 0.5  # ...and this share of the strongest stroke within a few characters
# A whole TD1 zone's block is 5-7.5 times longer than high (lines ~32 cap heights, the zone ~4.6
# plus the closing's margin); a block under SHORT_BLOCK is part of one (glare hid the rest).
SHORT_BLOCK, WHOLE_BLOCK = 5.0, 7.5
# A TD1 line is 30 characters at 1.0-1.15 cap heights (a box up to ~1.1 caps high): shorter
# than SHORT_LINE box heights it is cut, longer than LONG_LINE it is not one line.
SHORT_LINE, LONG_LINE, GLARE_GAP = 22.0, 37.0, 8.0
DENOISE_SIGMA = 1.0  # work pixels: a character there is 7-20 px high, a stroke 1-3
# A frame's stroke mask is a few percent ink (2-5% on the spec corpus); one that is mostly ink
# (30-47% on its dim, noisy frames) is noise.
NOISY_MASK = 0.15
NOISE_FLOOR = 3.0  # a stroke's black-hat is at least this many times the frame's median
TEXT_REGIONS = 8  # print regions searched for single text lines (a zone's 3 lines among other print)


@dataclass(frozen=True)
class Block:
    center: tuple[float, float]  # full-resolution pixels
    length: float  # along the lines
    height: float  # across the lines
    angle: float  # degrees, direction of the lines (mod 180)


def _mask(gray: np.ndarray, denoise: bool = False) -> tuple[np.ndarray, float]:
    """Dark strokes of the frame at work resolution. ``denoise``: for a dim, noisy frame, where
    Otsu's threshold on the raw strokes falls into the noise and the whole frame turns to ink:
    the frame smoothed first, and the threshold kept above the noise's own black-hat level."""
    scale = WORK_WIDTH / gray.shape[1]
    small = cv2.resize(gray, (WORK_WIDTH, round(gray.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    if denoise:
        small = cv2.GaussianBlur(small, (0, 0), DENOISE_SIGMA)
    blackhat = cv2.morphologyEx(small, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13)))
    level, mask = cv2.threshold(blackhat, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    if denoise:
        floor = NOISE_FLOOR * float(np.median(blackhat)) + 2.0
        if floor > level:
            mask = cv2.threshold(blackhat, floor, 255, cv2.THRESH_BINARY)[1]
    return mask, scale


def _zone_blocks(mask: np.ndarray, scale: float) -> list[tuple[float, Block]]:
    """Whole zones: the mask closed until the characters and lines of the zone fuse into one
    rectangle 2-9 times longer than high, standing clear of other print."""
    out: list[tuple[float, Block]] = []
    half = cv2.resize(mask, (mask.shape[1] // 2, mask.shape[0] // 2), interpolation=cv2.INTER_AREA)
    # Character gaps and line gaps grow with the characters (14-40 px): the widest closing runs
    # at half resolution (an ellipse of 27 at full size costs as much as the rest together).
    for image, close, opening, factor in ((mask, 9, 5, 1), (mask, 17, 5, 1), (half, 13, 3, 2)):
        merged = cv2.morphologyEx(image, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close, close)))
        merged = cv2.morphologyEx(merged, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                                                     (opening, opening)))
        merged = cv2.threshold(merged, 127, 255, cv2.THRESH_BINARY)[1]
        contours, _ = cv2.findContours(merged, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        contours = [c * factor for c in contours]
        for contour in contours:
            if len(contour) < 5:
                continue
            (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
            length, height = max(w, h), min(w, h)
            if height < 12 or length < 120 or not 2.0 <= length / height <= 9.0:
                continue
            if cv2.contourArea(contour) < 0.6 * length * height:
                continue
            direction = (angle if w >= h else angle + 90) % 180
            out.append((length * height, Block((cx / scale, cy / scale), length / scale, height / scale, direction)))
    return out


@dataclass(frozen=True)
class _Line:
    center: np.ndarray  # work-image pixels
    length: float
    thick: float
    angle: float  # degrees mod 180


def _line_kernel(angle: float, length: int = 21) -> np.ndarray:
    kernel = np.zeros((length, length), np.uint8)
    rad, half = math.radians(angle), (length - 1) / 2
    dx, dy = half * math.cos(rad), half * math.sin(rad)
    cv2.line(kernel, (round(half - dx), round(half - dy)), (round(half + dx), round(half + dy)), 1, 1)
    return kernel


def _text_lines(mask: np.ndarray) -> list[_Line]:
    """Single text lines. Print regions are found by a wide closing; the direction of their
    minimum-area rectangle is the lines' direction or across it, so the region is closed again
    with a thin line-shaped kernel in both: along the lines it joins the characters (gaps up to
    ~20 work pixels, characters 7-20 px high) and, one pixel thick, never joins two lines, which
    an isotropic closing does (the gap between MRZ lines is only ~2x the gap between characters)."""
    regions = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (17, 17)))
    contours, _ = cv2.findContours(regions, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    lines: list[_Line] = []
    # The largest print regions that are long enough to hold a line. With 26-40 px characters the
    # closing no longer joins the zone's lines: each is a region of its own, smaller than a
    # fingerprint or a block of bold print (spec seed 4 frames 6 and 115: lines 4th-6th by area).
    regions = [r for r in sorted(contours, key=cv2.contourArea, reverse=True)[:TEXT_REGIONS + 3]
               if max(cv2.minAreaRect(r)[1]) >= 150][:TEXT_REGIONS]
    for index, region in enumerate(regions):
        (_, _), (w, h), angle = cv2.minAreaRect(region)
        x, y, bw, bh = cv2.boundingRect(region)
        x0, y0 = max(0, x - 12), max(0, y - 12)
        roi = mask[y0:y + bh + 12, x0:x + bw + 12]
        if index >= 3:
            # Beyond the three largest: this region's own print only, and only lines not found
            # yet (a line beside it, in its padded box, was found whole from its own region; a
            # piece of it found again moved a zone's stack: spec seed 2 frame 9).
            own = np.zeros_like(roi)
            cv2.drawContours(own, [region - np.int32([x0, y0])], -1, 255, cv2.FILLED)
            roi = cv2.bitwise_and(roi, own)
        for direction in (angle % 180, (angle + 90) % 180):
            closed = cv2.morphologyEx(roi, cv2.MORPH_CLOSE, _line_kernel(direction))
            found, _ = cv2.findContours(closed, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            for contour in found:
                if len(contour) < 5:
                    continue
                (cx, cy), (cw, ch), a = cv2.minAreaRect(contour)
                length, thick = max(cw, ch), min(cw, ch)
                line_angle = (a if cw >= ch else a + 90) % 180
                if thick < 4 or length < 150 or length / thick < 10 or _angle_gap(line_angle, direction) > 6:
                    continue
                if cv2.contourArea(contour) < 0.5 * length * thick:
                    continue
                line = _Line(np.float32([cx + x0, cy + y0]), length, thick, line_angle)
                if index < 3 or not any(_same_line(line, other) for other in lines):
                    lines.append(line)
    return lines


def _offsets(a: _Line, b: _Line) -> tuple[float, float]:
    """How far ``b``'s centre lies from ``a``'s, along ``a`` and across it (absolute pixels)."""
    rad = math.radians(a.angle)
    delta = b.center - a.center
    return (abs(float(delta[0] * math.cos(rad) + delta[1] * math.sin(rad))),
            abs(float(-delta[0] * math.sin(rad) + delta[1] * math.cos(rad))))


def _same_line(a: _Line, b: _Line) -> bool:
    """``a`` lies on ``b``: parallel, less than a line's thickness across it, within its length."""
    d_along, d_across = _offsets(b, a)
    return _angle_gap(a.angle, b.angle) <= 4 and d_across < b.thick and d_along < b.length / 2


def _angle_gap(a: float, b: float) -> float:
    d = abs(a - b) % 180
    return min(d, 180 - d)


def _line_blocks(mask: np.ndarray, scale: float) -> list[tuple[float, Block]]:
    """Zones as stacks of parallel text lines of one length, a line pitch apart (ICAO: 6 lines
    per inch, about 1.8 character heights): found even where the zone touches other print, which
    fuses it with that print into a shape :func:`_zone_blocks` rejects."""
    lines = _text_lines(mask)
    parent = list(range(len(lines)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(lines):
        for j in range(i + 1, len(lines)):
            b = lines[j]
            if _angle_gap(a.angle, b.angle) > 4:
                continue
            d_along, d_across = _offsets(a, b)
            thick = (a.thick + b.thick) / 2
            short, long = sorted((a.length, b.length))
            # Lines of one length side by side; or a piece of a line (glare cut the rest away)
            # lying within its neighbour's length (spec seed 4 frame 137: line 2 split by glare
            # into pieces, lines 1 and 3 two pitches apart, no two lines stacked).
            if long <= 1.3 * short and d_along < 0.15 * a.length or d_along + short / 2 <= 0.55 * long:
                if 1.1 * thick <= d_across <= 2.8 * thick:
                    parent[root(j)] = root(i)
    groups: dict[int, list[_Line]] = {}
    for i in range(len(lines)):
        groups.setdefault(root(i), []).append(lines[i])
    out: list[tuple[float, Block]] = []
    for group in groups.values():
        if len(group) < 2:
            continue
        angle = group[0].angle
        rad = math.radians(angle)
        normal = np.float32([-math.sin(rad), math.cos(rad)])
        across = sorted(float(line.center @ normal) for line in group)
        pitch = (across[-1] - across[0]) / (len(across) - 1)
        # Two lines: a passport's zone, or a card's with its third line cut (glare): take one
        # more pitch on each side and let the line split sort it out.
        extra = pitch if len(group) == 2 else 0.5 * pitch
        height = across[-1] - across[0] + 2 * extra + max(line.thick for line in group)
        length = max(line.length for line in group) * 1.04
        center = np.mean([line.center for line in group], axis=0)
        out.append((length * height, Block((float(center[0]) / scale, float(center[1]) / scale), length / scale,
                                           height / scale, angle)))
    return out


def find_blocks(gray: np.ndarray, max_blocks: int = 4) -> Iterator[Block]:
    """Text blocks shaped like an MRZ, largest first (full-resolution coordinates): zones standing
    clear first, then stacks of lines not already among them, each looked for only when the
    reader asks for more (most frames are read from a clear zone). When the frame's mask is
    mostly noise (a dim, noisy frame: Otsu's threshold fell into the noise), both again on the
    frame smoothed."""
    blocks: list[Block] = []
    mask, scale = _mask(gray)
    masks = [mask]
    if float(np.count_nonzero(mask)) > NOISY_MASK * mask.size:
        masks.append(_mask(gray, denoise=True)[0])
    for index, mask in enumerate(masks):
        for finder in (_zone_blocks, _line_blocks):
            found = finder(mask, scale)
            found.sort(key=lambda item: -item[0])
            for _, block in found:
                if len(blocks) == max_blocks + 2 * index:
                    break
                if not any(math.dist(block.center, b.center) < 0.3 * b.height for b in blocks):
                    blocks.append(block)
                    yield block


def level(gray: np.ndarray, block: Block, lines_hint: int = 3) -> np.ndarray:
    """The block warped level (lines horizontal), padded, scaled so a character is ~TARGET_CAP px."""
    cap_estimate = block.height / (lines_hint * 1.6)
    scale = min(3.0, max(0.5, TARGET_CAP / max(cap_estimate, 1.0)))
    # Generous along the lines: glare or a fold can split a zone, and the block found is then
    # only part of it; the lines' own ink extents (``split_lines``) say where they end.
    # A block much shorter than a whole zone of its height (glare hid the rest) gets room for it
    # on either side.
    pad_along = 0.2 * block.length + cap_estimate
    if block.length < SHORT_BLOCK * block.height:
        pad_along = max(pad_along, WHOLE_BLOCK * block.height - block.length)
    pad_across = 0.25 * block.height
    out_w = round((block.length + 2 * pad_along) * scale)
    out_h = round((block.height + 2 * pad_across) * scale)
    rad = math.radians(block.angle)
    cos, sin = math.cos(rad), math.sin(rad)
    # Affine map from output pixels to frame pixels: output x runs along the lines.
    cx, cy = block.center
    to_frame = np.float64([[cos / scale, -sin / scale, cx - cos * out_w / 2 / scale + sin * out_h / 2 / scale],
                           [sin / scale, cos / scale, cy - sin * out_w / 2 / scale - cos * out_h / 2 / scale]])
    return cv2.warpAffine(gray, to_frame, (out_w, out_h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True)
class LineBox:
    top: int
    bottom: int
    left: int
    right: int


def _blackhat(levelled: np.ndarray) -> np.ndarray:
    return cv2.morphologyEx(levelled, cv2.MORPH_BLACKHAT,
                            cv2.getStructuringElement(cv2.MORPH_RECT, (TARGET_CAP, TARGET_CAP)))


def ink_mask(levelled: np.ndarray, blackhat: np.ndarray | None = None) -> np.ndarray:
    """Dark strokes thinner than a character on the levelled block (255 = ink)."""
    blackhat = _blackhat(levelled) if blackhat is None else blackhat
    _, ink = cv2.threshold(blackhat, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))


def faint_ink(blackhat: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """``ink`` with the strokes glare washed out: one global threshold loses the characters
    under glare, though they stay readable (normalized correlation does not care about
    contrast). A stroke counts when it is strong against the strongest stroke near it (a few
    characters along the line) and above the noise floor. Used for where lines end only: as the
    rows of the lines it would take in security print and make them taller."""
    level = float(blackhat[ink > 0].min()) if ink.any() else 255.0
    local = cv2.dilate(blackhat, np.ones((TARGET_CAP, 3 * TARGET_CAP), np.uint8)).astype(np.float32)
    floor = max(LOCAL_FLOOR * level, 3.0 * float(np.median(blackhat)) + 4.0)
    faint = ((blackhat > floor) & (blackhat > LOCAL_SHARE * local)).astype(np.uint8) * 255
    return cv2.max(ink, cv2.morphologyEx(faint, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)))


def _skew(ink: np.ndarray) -> float:
    """Degrees the lines of a levelled block still slope (y grows along x): the shear whose row
    projection of the ink is sharpest. A block's rectangle can be off by a degree or two (a zone
    fused with a card edge, a stack of lines), which over 30 characters moves a line's end by
    more than the classifier's vertical search."""
    ys, xs = np.nonzero(ink)
    if len(xs) < 200:
        return 0.0
    xs = xs.astype(np.float32) - ink.shape[1] / 2
    ys = ys.astype(np.float32)

    def sharpness(degrees: float) -> float:
        rows = np.round(ys - math.tan(math.radians(degrees)) * xs).astype(np.int64)
        counts = np.bincount(rows - rows.min())
        return float(np.dot(counts, counts))

    best = max(np.arange(-4.0, 4.01, 0.5), key=sharpness)
    return float(max((best - 0.25, best, best + 0.25), key=sharpness))


def level_refined(gray: np.ndarray, block: Block) -> np.ndarray:
    """:func:`level`, then once more at the angle corrected by the lines' remaining slope."""
    levelled = level(gray, block)
    slope = _skew(ink_mask(levelled))
    if abs(slope) < 0.2:
        return levelled
    return level(gray, Block(block.center, block.length, block.height, (block.angle + slope) % 180))


def _bands(rows: np.ndarray) -> list[tuple[int, int]]:
    """Runs of rows holding ink; a run much taller than the others (a line fused with print just
    above or below it, through a stroke of security print or a descender) is cut at its thinnest
    row."""
    active = rows > max(3, 0.12 * rows.max(initial=0))
    bands: list[tuple[int, int]] = []
    y = 0
    while y < len(active):
        if not active[y]:
            y += 1
            continue
        start = y
        while y < len(active) and active[y]:
            y += 1
        if y - start >= 6:
            bands.append((start, y))
    if len(bands) < 2:
        return bands
    typical = float(np.median([b - a for a, b in bands]))
    out: list[tuple[int, int]] = []
    for a, b in bands:
        margin = round(0.5 * typical)
        if b - a > 1.5 * typical and b - a - 2 * margin > 0:
            inner = rows[a + margin:b - margin]
            cut = a + margin + int(np.argmin(inner))
            if rows[cut] < 0.5 * rows[a:b].max():
                out += [(a, cut), (cut + 1, b)] if cut - a >= 6 and b - cut - 1 >= 6 else [(a, b)]
                continue
        out.append((a, b))
    return out


def split_lines(levelled: np.ndarray) -> tuple[np.ndarray, list[LineBox]]:
    """Ink mask of the levelled block and its text lines (top to bottom) by row projection."""
    blackhat = _blackhat(levelled)
    ink = ink_mask(levelled, blackhat)
    rows = (ink > 0).sum(axis=1)
    along = faint_ink(blackhat, ink)
    boxes: list[LineBox] = []
    for start, y in _bands(rows):
        band = along[start:y]
        # Join characters so a stray speck beside the line does not stretch it.
        joined = cv2.morphologyEx(band, cv2.MORPH_CLOSE, np.ones((1, TARGET_CAP), np.uint8))
        cols = np.nonzero(joined.sum(axis=0) > 2 * 255)[0]
        if len(cols):
            runs = np.split(cols, np.nonzero(np.diff(cols) > TARGET_CAP)[0] + 1)
            left, right = _joined([(int(r[0]), int(r[-1]) + 1) for r in runs], y - start)
            boxes.append(LineBox(start, y, left, right))
    return ink, boxes


def _joined(runs: list[tuple[int, int]], height: int) -> tuple[int, int]:
    """A line's extent: its longest run of ink, joined with the runs beside it while it is too
    short for an MRZ line of its height and they are near (glare can blank a stretch of the line
    whiter than even :func:`faint_ink` finds, splitting it in two)."""
    index = max(range(len(runs)), key=lambda i: runs[i][1] - runs[i][0])
    lo = hi = index
    left, right = runs[index]
    while right - left < SHORT_LINE * height:
        gaps = [(runs[lo][0] - runs[lo - 1][1], lo - 1) if lo > 0 else None,
                (runs[hi + 1][0] - runs[hi][1], hi + 1) if hi + 1 < len(runs) else None]
        near = [g for g in gaps if g is not None and g[0] <= GLARE_GAP * height]
        if not near:
            break
        _, nearest = min(near)
        if max(right, runs[nearest][1]) - min(left, runs[nearest][0]) > LONG_LINE * height:
            break
        lo, hi = min(lo, nearest), max(hi, nearest)
        left, right = runs[lo][0], runs[hi][1]
    return left, right
