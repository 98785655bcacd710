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
from dataclasses import dataclass

import cv2
import numpy as np

WORK_WIDTH = 960
TARGET_CAP = 30  # character height in the levelled block, px (templates are matched at 24)


@dataclass(frozen=True)
class Block:
    center: tuple[float, float]  # full-resolution pixels
    length: float  # along the lines
    height: float  # across the lines
    angle: float  # degrees, direction of the lines (mod 180)


def _mask(gray: np.ndarray) -> tuple[np.ndarray, float]:
    scale = WORK_WIDTH / gray.shape[1]
    small = cv2.resize(gray, (WORK_WIDTH, round(gray.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    blackhat = cv2.morphologyEx(small, cv2.MORPH_BLACKHAT, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (13, 13)))
    _, mask = cv2.threshold(blackhat, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return mask, scale


def find_blocks(gray: np.ndarray, max_blocks: int = 4) -> list[Block]:
    """Text blocks shaped like an MRZ, largest first (full-resolution coordinates)."""
    mask, scale = _mask(gray)
    blocks: list[tuple[float, Block]] = []
    for close in (9, 17):
        merged = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close, close)))
        merged = cv2.morphologyEx(merged, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5)))
        contours, _ = cv2.findContours(merged, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
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
            block = Block((cx / scale, cy / scale), length / scale, height / scale, direction)
            if not any(math.dist(block.center, b.center) < 0.3 * b.height for _, b in blocks):
                blocks.append((length * height, block))
    blocks.sort(key=lambda item: -item[0])
    return [b for _, b in blocks[:max_blocks]]


def level(gray: np.ndarray, block: Block, lines_hint: int = 3) -> np.ndarray:
    """The block warped level (lines horizontal), padded, scaled so a character is ~TARGET_CAP px."""
    cap_estimate = block.height / (lines_hint * 1.6)
    scale = min(3.0, max(0.5, TARGET_CAP / max(cap_estimate, 1.0)))
    pad_along, pad_across = 0.04 * block.length + cap_estimate, 0.25 * block.height
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


def split_lines(levelled: np.ndarray) -> tuple[np.ndarray, list[LineBox]]:
    """Ink mask of the levelled block and its text lines (top to bottom) by row projection."""
    blackhat = cv2.morphologyEx(levelled, cv2.MORPH_BLACKHAT,
                                cv2.getStructuringElement(cv2.MORPH_RECT, (TARGET_CAP, TARGET_CAP)))
    _, ink = cv2.threshold(blackhat, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    ink = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    rows = (ink > 0).sum(axis=1)
    active = rows > max(3, 0.12 * rows.max(initial=0))
    boxes: list[LineBox] = []
    y = 0
    while y < len(active):
        if not active[y]:
            y += 1
            continue
        start = y
        while y < len(active) and active[y]:
            y += 1
        if y - start >= 6:
            band = ink[start:y]
            # Join characters so a stray speck beside the line does not stretch it.
            joined = cv2.morphologyEx(band, cv2.MORPH_CLOSE, np.ones((1, TARGET_CAP), np.uint8))
            cols = np.nonzero(joined.sum(axis=0) > 2 * 255)[0]
            if len(cols):
                runs = np.split(cols, np.nonzero(np.diff(cols) > TARGET_CAP)[0] + 1)
                longest = max(runs, key=len)
                boxes.append(LineBox(start, y, int(longest[0]), int(longest[-1]) + 1))
    return ink, boxes
