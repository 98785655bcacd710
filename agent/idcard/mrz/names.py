"""The names line read again at the glyph width the validated lines fit best.

The names (line 3 of a TD1 zone) are covered by no check digit, so nothing corrects a misread
there: a camera at an angle along the card, or a line box a little taller than the print, makes
the characters look wider than OCR-B drawn at the box's height, and O reads D, U reads D (the
spec corpus's main names error). Choosing a width by how well the names line itself fits would
be circular (a wider canvas turns R into a better P). The other lines were just validated by
their check digits, so their true characters are known: the width at which those fit best is
the zone's, and the names line is read again at it.
"""
from __future__ import annotations

import numpy as np

from agent.idcard.mrz.classify import WIDTHS, classify_line, retrack, stretched
from agent.idcard.mrz.correct import LETTERS, NAMES_RE, Layout
from agent.idcard.mrz.glyphs import ALPHABET, GlyphSet

NAME_CHARS = np.array([ALPHABET.index(c) for c in LETTERS + "<"])


def _line_scores(canvas: np.ndarray, pitch: float, count: int, glyphs: GlyphSet, factor: float) -> np.ndarray:
    canvas, pitch = stretched(canvas, pitch, glyphs, factor)
    return retrack(canvas, count, glyphs, pitch, classify_line(canvas, count, glyphs, pitch))


def _fit(lines: list[tuple[np.ndarray, float]], rows: list[str], known: list[int], count: int, glyphs: GlyphSet,
         factor: float) -> float:
    """Mean score of the validated lines' own characters with the glyphs ``factor`` times as wide."""
    total = 0.0
    for index in known:
        scores = _line_scores(*lines[index], count, glyphs, factor)
        truth = [ALPHABET.index(c) for c in rows[index]]
        total += float(scores[np.arange(count), truth].mean())
    return total / len(known)


def refined_names(lines: list[tuple[np.ndarray, float]], text: str, layout: Layout, glyphs: GlyphSet) -> str:
    """``text`` (validated) with its names read again at the width its other lines fit best;
    unchanged when that is the width already read, or the new names are not name-shaped."""
    rows = text.split("\n")
    line, start, stop = layout.names
    known = [i for i in range(layout.lines) if i != line]
    if not known or len(lines) != layout.lines:
        return text
    factor = max(WIDTHS, key=lambda f: _fit(lines, rows, known, layout.width, glyphs, f))
    if factor == 1.0:
        return text
    scores = _line_scores(*lines[line], layout.width, glyphs, factor)
    names = "".join(ALPHABET[NAME_CHARS[k]] for k in scores[:, NAME_CHARS].argmax(axis=1))[start:stop]
    if not NAMES_RE.match(names):
        return text
    rows[line] = rows[line][:start] + names + rows[line][stop:]
    return "\n".join(rows)
