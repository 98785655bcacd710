"""Camera frame -> validated MRZ text: locate the zone, level it, classify, correct.

Both reading directions of each candidate block are tried (the block's angle is known only up
to 180 degrees); the first that validates wins. ``read_mrz`` returns the text (for the same
parsers as a hand-held reader's) or ``None``, and ``MrzAttempt`` says whether an MRZ-shaped
zone was seen at all, so the capture can tell "no card" from "card seen, MRZ unreadable".
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from agent.idcard.mrz.classify import (RETRACK_BELOW, STRETCHES, along, classify_cells, classify_line, line_canvas,
                                      retrack)
from agent.idcard.mrz.correct import TD1, TD3, Layout, Unreadable, correct
from agent.idcard.mrz.glyphs import GlyphSet, glyph_set
from agent.idcard.mrz.names import refined_names
from agent.idcard.mrz.locate import LineBox, find_blocks, level_refined, split_lines

MIN_MEAN_SCORE = 0.6  # below this the "characters" are not OCR-B text at all
DIRECTION_MARGIN = 0.05  # the right way up must correlate this much better than upside down


@dataclass
class MrzAttempt:
    text: str | None = None
    zone_seen: bool = False  # lines shaped like an MRZ were found and looked like OCR-B
    reasons: list[str] = field(default_factory=list)
    ms: float = 0.0


def _mended(group: list[LineBox]) -> list[LineBox]:
    """A line cut short by a glare blob or a smudge (its longest ink run is only part of it) takes
    the extent of the zone's other lines, when it lies within them: every line of a zone has the
    same number of characters, so the same extent."""
    if len(group) < 3:
        return group
    lefts, rights = sorted(b.left for b in group), sorted(b.right for b in group)
    left, right = lefts[len(group) // 2], rights[len(group) // 2]
    width = right - left
    return [LineBox(b.top, b.bottom, left, right)
            if b.right - b.left < 0.8 * width and b.left >= left - 0.05 * width and b.right <= right + 0.05 * width
            else b for b in group]


def _line_sets(boxes: list[LineBox]) -> list[tuple[Layout, list[LineBox]]]:
    """Consecutive lines shaped like a TD1 (3 x 30) or TD3 (2 x 44) zone."""
    sets = []
    for layout in (TD1, TD3):
        for start in range(len(boxes) - layout.lines + 1):
            group = _mended(boxes[start:start + layout.lines])
            widths = [b.right - b.left for b in group]
            heights = [b.bottom - b.top for b in group]
            aspect = np.median(widths) / max(1.0, float(np.median(heights)))
            # A TD1 line is 30 pitches long and one character (or a digit, ~9% taller) high, its
            # pitch 1.0-1.15 character heights: TD1 and TD3 lines do not overlap in this ratio.
            low, high = (0.75, 1.25) if layout is TD1 else (0.85, 1.35)
            if max(widths) > 1.25 * min(widths) or not low * layout.width <= aspect <= high * layout.width:
                continue
            sets.append((layout, group))
    return sets


def _ends(ink: np.ndarray, box: LineBox) -> tuple[float, float]:
    """The line's vertical centre (ink centroid) at its left and right ends."""
    part = max(4, (box.right - box.left) // 6)
    y0 = box.top
    band = ink[y0:box.bottom]
    rows = np.arange(band.shape[0], dtype=np.float32) + y0
    centres = []
    for cols in (band[:, box.left:box.left + part], band[:, box.right - part:box.right]):
        weight = (cols > 0).sum(axis=1).astype(np.float32)
        centres.append(float(rows @ weight / weight.sum()) if weight.sum() else (box.top + box.bottom) / 2)
    return centres[0], centres[1]


def _perspective(ink: np.ndarray, group: list[LineBox]) -> tuple[list[float], float]:
    """For the zone, how much taller the characters are at the right end than at the left (from
    how the lines' spacing changes: unlike a line's own height, that does not depend on which
    characters it holds); and per line, how far its middle falls from left to right end as the
    lines converge towards the far end (from that ratio and the line's place in the zone: a
    line's own centroid is pulled by security print and glare)."""
    if len(group) < 2:
        return [0.0] * len(group), 1.0
    (first_left, first_right), (last_left, last_right) = _ends(ink, group[0]), _ends(ink, group[-1])
    if last_left - first_left < 4:
        return [0.0] * len(group), 1.0
    ratio = min(1.25, max(0.8, (last_right - first_right) / (last_left - first_left)))
    middles = np.float32([(box.top + box.bottom) / 2 for box in group])
    drifts = (middles - middles.mean()) * 2 * (ratio - 1) / (1 + ratio)
    return [float(d) for d in drifts], ratio


PREVIEW = np.arange(0, 44, 3)  # every third cell: enough to choose a direction and a box reading
POOR_FINALISTS = 2  # readings per direction read in full when the best preview is poor


@dataclass
class _Reading:
    """One line under one reading of its ink box (capitals' height, or the taller digits')."""
    canvas: np.ndarray
    pitch: float
    preview: float  # mean best score over the PREVIEW cells
    box: LineBox | None = None  # where it was read from (:func:`_re_ended` moves its ends)


@dataclass
class _Candidate:
    """One reading of a zone: a layout on a group of lines in one direction, previewed on every
    third cell; each line keeps the box reading that previews better."""
    layout: Layout
    lines: list[_Reading]
    # The levelled block and each line's perspective (drift, ratio), to read a line again.
    image: np.ndarray | None = None
    views: list[tuple[float, float]] = field(default_factory=list)

    @property
    def preview(self) -> float:
        return float(np.mean([line.preview for line in self.lines]))

    def scores(self) -> np.ndarray:
        """Every cell classified, lines that fit poorly re-tracked: (lines, width, len(ALPHABET))."""
        glyphs = glyph_set()
        out = []
        for line in self.lines:
            scores = classify_line(line.canvas, self.layout.width, glyphs, line.pitch)
            out.append(retrack(line.canvas, self.layout.width, glyphs, line.pitch, scores))
        return np.stack(out)


def _line_reading(levelled: np.ndarray, box: LineBox, count: int, glyphs: GlyphSet, drift: float,
                  ratio: float) -> _Reading:
    readings = []
    cells = PREVIEW[PREVIEW < count]
    for box_caps in (1.0, glyphs.digit_caps):
        canvas, pitch = line_canvas(levelled, box.top, box.bottom, box.left, box.right, count, glyphs, box_caps,
                                    drift, ratio)
        preview, _ = classify_cells(canvas, count, glyphs, pitch, cells=cells)
        readings.append(_Reading(canvas, pitch, float(preview.max(axis=1).mean()), box))
    return max(readings, key=lambda r: r.preview)


def _stretched(candidate: _Candidate, glyphs: GlyphSet) -> _Candidate:
    """A zone that fits poorly, its lines resampled along their length (:func:`along`) by the
    stretch the whole zone previews best at (one for all lines: one card, one camera; a line
    alone previews too few cells to choose), coarse then 7% either side."""
    candidate = _re_ended(candidate, glyphs)  # first each poor line's ends where the others have theirs
    count = candidate.layout.width
    cells = PREVIEW[PREVIEW < count]

    def tried(stretch: float) -> _Candidate:
        lines = []
        for line in candidate.lines:
            canvas = along(line.canvas, line.pitch, count, glyphs, stretch)
            preview, _ = classify_cells(canvas, count, glyphs, line.pitch, cells=cells)
            lines.append(_Reading(canvas, line.pitch, float(preview.max(axis=1).mean()), line.box))
        return _Candidate(candidate.layout, lines, candidate.image, candidate.views)

    options = [(1.0, candidate)] + [(stretch, tried(stretch)) for stretch in STRETCHES]
    stretch, best = max(options, key=lambda o: o[1].preview)
    if stretch != 1.0:
        best = max([best, tried(stretch * 1.07), tried(stretch / 1.07)], key=lambda c: c.preview)
    return best


# A line whose ink box is under this share of its zone's other lines' heights may have been cut
# (glare thinned its row projection, or the cut from print above fell inside it).
SHORT_BOX = 0.85


def _regrown(levelled: np.ndarray, group: list[LineBox], index: int, reading: _Reading, count: int,
             glyphs: GlyphSet, drift: float, ratio: float) -> _Reading:
    """A line that previews poorly and whose box is clearly lower than its zone's other lines (a
    zone's lines are all one character high) read again with their height, grown up, down or
    both ways; the best preview kept. Only as a second reading of a poorly fitting line: giving
    every short first line its neighbour's height lost reads on lines cut right (bench README)."""
    box = group[index]
    height = float(np.median([b.bottom - b.top for i, b in enumerate(group) if i != index]))
    if reading.preview >= RETRACK_BELOW or box.bottom - box.top >= SHORT_BOX * height:
        return reading
    grow = round(height - (box.bottom - box.top))
    options = [reading]
    for up in (grow, 0, grow // 2):
        top = max(0, box.top - up)
        bottom = min(levelled.shape[0], box.bottom + grow - up)
        options.append(_line_reading(levelled, LineBox(top, bottom, box.left, box.right), count, glyphs, drift,
                                     ratio))
    return max(options, key=lambda r: r.preview)


def _scored(levelled: np.ndarray) -> list[_Candidate]:
    glyphs = glyph_set()
    ink, boxes = split_lines(levelled)
    out = []
    for layout, group in _line_sets(boxes):
        drifts, ratio = _perspective(ink, group)
        lines = [_line_reading(levelled, b, layout.width, glyphs, d, ratio) for b, d in zip(group, drifts)]
        lines = [_regrown(levelled, group, i, line, layout.width, glyphs, drifts[i], ratio)
                 for i, line in enumerate(lines)]
        out.append(_Candidate(layout, lines, levelled, [(d, ratio) for d in drifts]))
    return out


# A line is read again at the ends of its zone's lines that preview this much better than it...
DONOR_LEAD = 0.1
RE_ENDED_GAIN = 0.02  # ...and kept when it then previews this much better (noise moves previews)


def _re_ended(candidate: _Candidate, glyphs: GlyphSet) -> _Candidate:
    """Each line that previews poorly read again with its left end, then its right end, where the
    zone's lines that fit clearly better have theirs (every line of a zone holds as many
    characters, printed from one margin), kept when it previews better. In a dim, noisy frame
    (14-16 px, noise sd 13-15) specks beside a line or a faint last filler put an ink end a cell
    off: the pitch is then 3-5% wrong and the cells a whole cell off by the line's middle, beyond
    the re-tracking's +-10 px (spec seed 3 frame 23: line 3's right end at 1233 beside 1179 and
    1192, preview 0.55). Only better lines' ends: a line whose own end is off previewed poorly,
    and its end, taken by another line, previewed a little better there in the noise (frame 146)."""
    if candidate.image is None or any(line.box is None for line in candidate.lines):
        return candidate
    count, lines = candidate.layout.width, []
    for line, (drift, ratio) in zip(candidate.lines, candidate.views):
        donors = [other.box for other in candidate.lines if other.preview >= line.preview + DONOR_LEAD]
        for side in ("left", "right"):
            box = line.box
            if line.preview >= RETRACK_BELOW or box is None:
                break
            ends = {getattr(donor, side) for donor in donors
                    if abs(getattr(donor, side) - getattr(box, side)) > (box.right - box.left) / count / 4}
            for end in sorted(ends):
                option = _line_reading(candidate.image, LineBox(
                    box.top, box.bottom, end if side == "left" else box.left, end if side == "right" else box.right),
                    count, glyphs, drift, ratio)
                if option.preview > line.preview + RE_ENDED_GAIN:
                    line = option
        lines.append(line)
    return _Candidate(candidate.layout, lines, candidate.image, candidate.views)


def _previewed(levelled: np.ndarray) -> list[list[_Candidate]]:
    """Each reading direction's candidates, best preview first (the cheap part of a block's read)."""
    return [sorted(_scored(image), key=lambda c: -c.preview)
            for image in (levelled, cv2.rotate(levelled, cv2.ROTATE_180))]


def _best_preview(per_direction: list[list[_Candidate]]) -> float:
    return max((c.preview for found in per_direction for c in found), default=0.0)


def _read_block(per_direction: list[list[_Candidate]], attempt: MrzAttempt) -> str | None:
    """Both reading directions are previewed (:func:`_previewed`); only the clearly better one is
    read in full and corrected. Upside-down OCR-B still correlates ~0.75 with some glyph, and
    checking it too would give the corrector a second, wrong chance to find a text that happens
    to validate.
    When the preview is not clear (close, or poor: a card in perspective misplaces the cells of
    both directions until they are re-tracked), each direction's best is read in full and they
    must then differ clearly."""
    poor = _best_preview(per_direction) < RETRACK_BELOW
    if poor:
        # Nothing fits well: every reading stretched along its lines (both directions, so the
        # choice between them stays fair).
        per_direction = [sorted((_stretched(c, glyph_set()) for c in found), key=lambda c: -c.preview)
                         for found in per_direction]
    finalists = sorted((found[0] for found in per_direction if found), key=lambda c: -c.preview)
    if not finalists:
        return None
    best, scores = finalists[0], None
    contested = len(finalists) > 1 and finalists[1].layout is best.layout
    if contested and (best.preview - finalists[1].preview < DIRECTION_MARGIN or poor):
        # Each direction's best full fit. A poor preview (every third cell, not re-tracked) is a
        # weak guide between a direction's groups of lines: the zone's three lines previewed
        # 0.71 and read 0.94, a group taking in a thin print line above previewed better.
        full = sorted((max(((float(s.max(axis=2).mean()), c, s) for c in found[:POOR_FINALISTS if poor else 1]
                            for s in [c.scores()]), key=lambda item: item[0])
                       for found in per_direction if found), key=lambda item: -item[0])
        if full[0][0] - full[1][0] < DIRECTION_MARGIN:
            attempt.reasons.append("direction_unclear")
            return None
        _, best, scores = full[0]
    if scores is None:
        scores = best.scores()
    if float(scores.max(axis=2).mean()) < MIN_MEAN_SCORE:
        attempt.reasons.append("not_ocr_b")
        return None
    attempt.zone_seen = True
    try:
        text = correct(scores, best.layout)
    except Unreadable as exc:
        attempt.reasons.append(exc.reason)
        return None
    return refined_names([(line.canvas, line.pitch) for line in best.lines], text, best.layout, glyph_set())


def read_mrz(gray: np.ndarray, budget_ms: float = 150.0, wall_cap_ms: float = 600.0) -> MrzAttempt:
    """Read the first MRZ block that validates; stop trying blocks once ``budget_ms`` of this
    thread's CPU time is spent (CPU, like the barcode pipeline's budget: on a busy machine a wall
    budget would give each frame a fraction of the work) or ``wall_cap_ms`` of wall time."""
    start = time.perf_counter()
    cpu_deadline = time.thread_time() + budget_ms / 1000.0
    wall_deadline = start + wall_cap_ms / 1000.0
    attempt = MrzAttempt()

    def spent() -> bool:
        return time.thread_time() > cpu_deadline or time.perf_counter() > wall_deadline

    # A block that previews well is read at once (most frames); one that previews poorly costs
    # the most to read (full scoring of both directions, re-tracking, stretching) and is deferred
    # until every block has been previewed, then the deferred are read in the finder's order (a
    # better preview among poor ones is no better guide: print previewed 0.72 beside its zone's
    # 0.68): print near the zone, found first, spent the budget before the zone itself was tried.
    deferred: list[list[list[_Candidate]]] = []
    tried = False  # some block read in full: as before, the first one is read whatever the budget
    for block in find_blocks(gray):
        per_direction = _previewed(level_refined(gray, block))
        if _best_preview(per_direction) >= RETRACK_BELOW:
            attempt.text, tried = _read_block(per_direction, attempt), True
        elif per_direction[0] or per_direction[1]:
            deferred.append(per_direction)
        if attempt.text or spent():
            break
    for per_direction in deferred:
        if attempt.text or (tried and spent()):
            break
        attempt.text, tried = _read_block(per_direction, attempt), True
    attempt.ms = (time.perf_counter() - start) * 1000
    return attempt
