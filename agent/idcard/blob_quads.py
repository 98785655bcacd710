"""Blob -> quadrilateral for the barcode localiser: the corners of an edge-density blob, and the
pieces of one symbol that a glare blob cut apart joined again."""
from __future__ import annotations

import cv2
import numpy as np


def quad_of(contour: np.ndarray) -> np.ndarray:
    """Four corners of the blob: the convex hull simplified to a quadrilateral (keeps
    perspective), unless that fits the hull clearly worse than the minimum-area rectangle. On a
    long thin symbol (a PDF417 of few columns) the simplification can put a corner halfway along a
    side and cut a triangle off the symbol (corpus C seeds 11-14: 5 more reads); only a clearly
    worse fit gives way, since the rectangle loses the perspective, which a wide PDF417 (its rows
    sheared across the crop) does not survive (preferring the better fit by any margin: 18 fewer)."""
    hull = cv2.convexHull(contour).reshape(-1, 2).astype(np.float32)
    perimeter = cv2.arcLength(hull, True)
    box = cv2.boxPoints(cv2.minAreaRect(contour)).astype(np.float32)
    for eps in (0.02, 0.04, 0.06):
        approx = cv2.approxPolyDP(hull, eps * perimeter, True)
        if len(approx) == 4:
            approx = approx.reshape(4, 2).astype(np.float32)
            fit = overlap(approx, hull)
            return box if fit < 0.9 and overlap(box, hull) > fit + 0.05 else approx
    return box


def overlap(quad: np.ndarray, hull: np.ndarray) -> float:
    """Intersection over union of a quadrilateral and a convex polygon (0 when the quad is not convex)."""
    if not cv2.isContourConvex(quad.reshape(-1, 1, 2)):
        return 0.0
    inter, _ = cv2.intersectConvexConvex(quad, hull)
    union = cv2.contourArea(quad) + cv2.contourArea(hull) - inter
    return inter / union if union > 0 else 0.0


def same_symbol(a: np.ndarray, b: np.ndarray, max_turn_deg: float = 8.0) -> bool:
    """Whether blobs ``a`` and ``b`` look like two pieces of one bar-code strip cut by a bright
    band (glare saturating the middle of a PDF417): long axes parallel, about as wide, ``b`` on
    the extension of ``a``'s long axis, and the gap between them shorter than twice their width."""
    (ca, (wa, ha), _), (cb, (wb, hb), _) = cv2.minAreaRect(a), cv2.minAreaRect(b)
    axis_a, axis_b = _long_axis(a), _long_axis(b)
    width_a, width_b = min(wa, ha), min(wb, hb)
    if abs(float(np.dot(axis_a, axis_b))) < np.cos(np.radians(max_turn_deg)):
        return False
    if not 0.6 <= width_b / max(width_a, 1e-6) <= 1.6:
        return False
    offset = np.float32(cb) - np.float32(ca)
    along = abs(float(np.dot(offset, axis_a)))
    across = abs(float(offset[0] * -axis_a[1] + offset[1] * axis_a[0]))
    gap = along - (max(wa, ha) + max(wb, hb)) / 2
    return across < 0.35 * width_a and gap < 2.0 * width_a


def _long_axis(contour: np.ndarray) -> np.ndarray:
    box = cv2.boxPoints(cv2.minAreaRect(contour))
    sides = [box[1] - box[0], box[2] - box[1]]
    side = max(sides, key=lambda v: float(np.hypot(*v)))
    return (side / max(float(np.hypot(*side)), 1e-6)).astype(np.float32)


def join_pieces(contours: list[np.ndarray], areas: list[float]) -> list[tuple[float, np.ndarray]]:
    """(area, blob) for each blob, largest first, except that every blob :func:`same_symbol`
    puts in line with a larger one is joined to it (areas summed). Each blob is joined once, to
    the largest that takes it: enough for the one glare band that cuts a symbol in two."""
    used: set[int] = set()
    out: list[tuple[float, np.ndarray]] = []
    order = sorted(range(len(contours)), key=lambda k: -areas[k])
    for i in order:
        if i in used:
            continue
        joined, area = contours[i], areas[i]
        for j in order:
            if j != i and j not in used and same_symbol(contours[i], contours[j]):
                joined, area = np.concatenate([joined, contours[j]]), area + areas[j]
                used.add(j)
        used.add(i)
        out.append((area, joined))
    return out
