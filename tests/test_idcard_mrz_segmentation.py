"""MRZ cells placed from the line boxes (issue 14, spec corpus): a line box that is wrong in
height or in extent misplaces every cell of its line; these are the second readings that repair
such boxes, each with a case the code before it got wrong."""
from __future__ import annotations

import cv2
import numpy as np

from agent.idcard.mrz.classify import RETRACK_BELOW, classify_line
from agent.idcard.mrz.glyphs import ALPHABET, glyph_set
from agent.idcard.mrz.locate import LineBox
from agent.idcard.mrz.reader import _line_reading, _regrown

ZONE = ("ICCOL3573619822<<<<<<<<<<<<<<<", "9203147F3402188COL10879404<<<3", "PENA<NUNEZ<<BEATRIZ<ELENA<<<<<")


def _levelled(lines: tuple[str, ...], scale: float = 1.25) -> tuple[np.ndarray, list[LineBox]]:
    """A levelled zone as the locator gives it (dark print on paper, a capital ``scale`` times the
    templates' height) and each line's true ink box."""
    glyphs = glyph_set()
    cell_w, cell_h = round(glyphs.cell_w * 1.05 * scale), round(glyphs.cell_h * scale)
    line_pitch = round(1.6 * cell_h)
    image = np.zeros((40 + line_pitch * len(lines), 60 + cell_w * 31), np.float32)
    boxes = []
    for row, text in enumerate(lines):
        y = 20 + row * line_pitch
        for col, char in enumerate(text):
            glyph = cv2.resize(glyphs.images[ALPHABET.index(char)], (round(glyphs.cell_w * scale), cell_h))
            x = 30 + col * cell_w
            image[y:y + cell_h, x:x + glyph.shape[1]] = np.maximum(image[y:y + cell_h, x:x + glyph.shape[1]], glyph)
        ink_rows = np.nonzero(image[y:y + cell_h].max(axis=1) > 0.3)[0]
        ink_cols = np.nonzero(image[y:y + cell_h].max(axis=0) > 0.3)[0]
        boxes.append(LineBox(y + int(ink_rows[0]), y + int(ink_rows[-1]) + 1, int(ink_cols[0]), int(ink_cols[-1]) + 1))
    rng = np.random.default_rng(3)
    paper = 200 - 150 * image + rng.normal(0, 2, image.shape)
    return np.clip(paper, 0, 255).astype(np.uint8), boxes


def test_a_line_whose_box_was_cut_low_is_read_at_its_zones_line_height() -> None:
    # Spec seed 1 frame 86: glare thinned line 1's row projection, its box came out 16 px high
    # beside 23-25 px lines; the glyphs were scaled a third too large and the line fit 0.46.
    levelled, boxes = _levelled(ZONE)
    glyphs = glyph_set()
    cut = boxes[0]
    cut = LineBox(cut.top + round(0.35 * (cut.bottom - cut.top)), cut.bottom, cut.left, cut.right)
    group = [cut] + boxes[1:]
    reading = _line_reading(levelled, cut, 30, glyphs, 0.0, 1.0)
    assert reading.preview < RETRACK_BELOW
    regrown = _regrown(levelled, group, 0, reading, 30, glyphs, 0.0, 1.0)
    assert regrown.preview > 0.85
    scores = classify_line(regrown.canvas, 30, glyphs, regrown.pitch)
    assert "".join(ALPHABET[i] for i in scores.argmax(axis=1)) == ZONE[0]


def test_a_line_that_fits_keeps_its_box() -> None:
    levelled, boxes = _levelled(ZONE)
    glyphs = glyph_set()
    for index, box in enumerate(boxes):
        reading = _line_reading(levelled, box, 30, glyphs, 0.0, 1.0)
        assert reading.preview > RETRACK_BELOW
        assert _regrown(levelled, boxes, index, reading, 30, glyphs, 0.0, 1.0) is reading
