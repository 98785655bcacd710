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

from agent.idcard.mrz.classify import classify_line, line_canvas
from agent.idcard.mrz.correct import TD1, TD3, Layout, Unreadable, correct
from agent.idcard.mrz.glyphs import GlyphSet, glyph_set
from agent.idcard.mrz.locate import LineBox, find_blocks, level_refined, split_lines

MIN_MEAN_SCORE = 0.6  # below this the "characters" are not OCR-B text at all
DIRECTION_MARGIN = 0.05  # the right way up must correlate this much better than upside down


@dataclass
class MrzAttempt:
    text: str | None = None
    zone_seen: bool = False  # lines shaped like an MRZ were found and looked like OCR-B
    reasons: list[str] = field(default_factory=list)
    ms: float = 0.0


def _line_sets(boxes: list[LineBox]) -> list[tuple[Layout, list[LineBox]]]:
    """Consecutive lines shaped like a TD1 (3 x 30) or TD3 (2 x 44) zone."""
    sets = []
    for layout in (TD1, TD3):
        for start in range(len(boxes) - layout.lines + 1):
            group = boxes[start:start + layout.lines]
            widths = [b.right - b.left for b in group]
            heights = [b.bottom - b.top for b in group]
            aspect = np.median(widths) / max(1.0, float(np.median(heights)))
            if max(widths) > 1.25 * min(widths) or not 0.65 * layout.width <= aspect <= 1.35 * layout.width:
                continue
            sets.append((layout, group))
    return sets


def _ends(ink: np.ndarray, box: LineBox) -> tuple[float, float]:
    """The line's vertical centre (ink centroid) at its left and right ends."""
    part = max(4, (box.right - box.left) // 6)
    y0 = max(0, box.top - 2)
    band = ink[y0:box.bottom + 2]
    rows = np.arange(band.shape[0], dtype=np.float32) + y0
    centres = []
    for cols in (band[:, box.left:box.left + part], band[:, box.right - part:box.right]):
        weight = (cols > 0).sum(axis=1).astype(np.float32)
        centres.append(float(rows @ weight / weight.sum()) if weight.sum() else (box.top + box.bottom) / 2)
    return centres[0], centres[1]


def _perspective(ink: np.ndarray, group: list[LineBox]) -> tuple[list[float], float]:
    """Per line, how far its middle falls from left to right end; and for the zone, how much
    taller the characters are at the right end than at the left (from how the lines' spacing
    changes: unlike a line's own height, that does not depend on which characters it holds)."""
    ends = [_ends(ink, box) for box in group]
    drifts = [right - left for left, right in ends]
    ratio = 1.0
    if len(ends) >= 2 and ends[-1][0] - ends[0][0] > 4:
        ratio = min(1.25, max(0.8, (ends[-1][1] - ends[0][1]) / (ends[-1][0] - ends[0][0])))
    return drifts, ratio


def _line_scores(levelled: np.ndarray, box: LineBox, count: int, glyphs: GlyphSet, drift: float,
                 ratio: float) -> np.ndarray:
    """Scores of one line's cells under both readings of its ink box (capitals' height, or the
    taller digits'), the one whose cells fit the templates better."""
    best: np.ndarray | None = None
    for box_caps in (1.0, glyphs.digit_caps):
        canvas, pitch = line_canvas(levelled, box.top, box.bottom, box.left, box.right, count, glyphs, box_caps,
                                    drift, ratio)
        scores = classify_line(canvas, count, glyphs, pitch)
        if best is None or scores.max(axis=1).mean() > best.max(axis=1).mean():
            best = scores
    assert best is not None
    return best


def _scored(levelled: np.ndarray) -> list[tuple[Layout, np.ndarray]]:
    glyphs = glyph_set()
    ink, boxes = split_lines(levelled)
    out = []
    for layout, group in _line_sets(boxes):
        drifts, ratio = _perspective(ink, group)
        out.append((layout, np.stack([_line_scores(levelled, b, layout.width, glyphs, d, ratio)
                                      for b, d in zip(group, drifts)])))
    return out


def _read_block(levelled: np.ndarray, attempt: MrzAttempt) -> str | None:
    """Both reading directions are scored; only the clearly better one is corrected. Upside-down
    OCR-B still correlates ~0.75 with some glyph, and checking it too would give the corrector
    a second, wrong chance to find a text that happens to validate."""
    candidates = [(float(scores.max(axis=2).mean()), layout, scores)
                  for image in (levelled, cv2.rotate(levelled, cv2.ROTATE_180))
                  for layout, scores in _scored(image)]
    if not candidates:
        return None
    candidates.sort(key=lambda item: -item[0])
    mean, layout, scores = candidates[0]
    if mean < MIN_MEAN_SCORE:
        attempt.reasons.append("not_ocr_b")
        return None
    attempt.zone_seen = True
    if len(candidates) > 1 and candidates[1][1] is layout and mean - candidates[1][0] < DIRECTION_MARGIN:
        attempt.reasons.append("direction_unclear")
        return None
    try:
        return correct(scores, layout)
    except Unreadable as exc:
        attempt.reasons.append(exc.reason)
        return None


def read_mrz(gray: np.ndarray, budget_ms: float = 150.0) -> MrzAttempt:
    start = time.perf_counter()
    attempt = MrzAttempt()
    for block in find_blocks(gray):
        attempt.text = _read_block(level_refined(gray, block), attempt)
        if attempt.text or (time.perf_counter() - start) * 1000 > budget_ms:
            break
    attempt.ms = (time.perf_counter() - start) * 1000
    return attempt
