"""OCR-B glyph templates for the MRZ alphabet, rendered from the system's OCR-B font.

The font comes from the Debian package ``fonts-ocr-b`` (public domain); templates are rendered
once per process at first use, nothing is downloaded. Each template is one character cell of the
monospaced font: the advance width by the cap height plus a margin, so a line of N characters
is N cells side by side and a cell's position is known from the line's pitch alone.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ<"
FONT_PATHS = (
    Path(os.environ.get("LOYALTY_AGENT_OCRB_FONT", "/usr/share/fonts/opentype/ocr-b/OCRB.otf")),
    Path("/usr/share/fonts/truetype/ocr-b/OCRB.ttf"),
)
CELL_H = 24  # cap height in template pixels
MARGIN_Y = 3  # rows above the cap line and below the baseline


class FontMissing(RuntimeError):
    """The OCR-B font is not installed (Debian package ``fonts-ocr-b``)."""


@dataclass(frozen=True, eq=False)  # hashed by identity: one set per process, cached
class GlyphSet:
    cell_w: int  # template width = the font's pitch at CELL_H cap height
    cell_h: int  # template height, margins included
    images: np.ndarray  # (len(ALPHABET), cell_h, cell_w) float32, ink = 1, paper = 0
    vectors: np.ndarray  # (len(ALPHABET), cell_h * cell_w) zero-mean, unit-norm (for correlation)
    pitch_to_cap: float  # the font's advance width / cap height (for locating lines)
    # The font's digits rise above the capitals (0-9 are ~9% taller in fonts-ocr-b): a line's ink
    # box is this many cap heights high when it holds digits, 1.0 when only letters and fillers.
    digit_caps: float = 1.0


def font_path() -> Path:
    for path in FONT_PATHS:
        if path.is_file():
            return path
    raise FontMissing("OCR-B font not found: install the Debian package fonts-ocr-b")


def _render(char: str, font, size: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    ascent, descent = font.getmetrics()
    image = Image.new("L", (size * 2, ascent + descent + size), 0)
    ImageDraw.Draw(image).text((size // 2, size // 2), char, font=font, fill=255)
    return np.asarray(image, np.float32) / 255.0


@functools.lru_cache(maxsize=4)
def glyph_set(blur_sigma: float = 0.6) -> GlyphSet:
    """Templates at CELL_H cap height, slightly blurred like a camera would see them."""
    from PIL import ImageFont

    size = 160
    font = ImageFont.truetype(str(font_path()), size)
    advance = font.getlength("0")
    cap = _render("H", font, size)
    rows = np.nonzero(cap.max(axis=1) > 0.5)[0]
    cap_top, baseline = int(rows[0]), int(rows[-1]) + 1
    cap_height = baseline - cap_top
    scale = CELL_H / cap_height
    cell_w = max(8, round(advance * scale))
    cell_h = CELL_H + 2 * MARGIN_Y
    images = np.zeros((len(ALPHABET), cell_h, cell_w), np.float32)
    for index, char in enumerate(ALPHABET):
        big = _render(char, font, size)
        left = size // 2  # the pen position: the cell starts here and is one advance wide
        top = cap_top - round(MARGIN_Y / scale)
        crop = big[top:top + round(cell_h / scale), left:left + round(advance)]
        small = cv2.resize(crop, (cell_w, cell_h), interpolation=cv2.INTER_AREA)
        if blur_sigma > 0:
            small = cv2.GaussianBlur(small, (0, 0), blur_sigma)
        images[index] = small
    flat = images.reshape(len(ALPHABET), -1)
    flat = flat - flat.mean(axis=1, keepdims=True)
    vectors = (flat / np.linalg.norm(flat, axis=1, keepdims=True)).astype(np.float32)
    digit_top = min(font.getbbox(d)[1] for d in "0123456789")
    cap_box = font.getbbox("H")
    digit_caps = (cap_box[3] - digit_top) / (cap_box[3] - cap_box[1])
    return GlyphSet(cell_w, cell_h, images, vectors, advance / cap_height, digit_caps)
