"""The localiser's blob geometry (agent.idcard.blob_quads): a thin PDF417's corners, and a symbol
cut in two by a glare band found as one candidate again."""
from __future__ import annotations

import cv2
import numpy as np
import pdf417gen

from agent.idcard.blob_quads import join_pieces, overlap, quad_of, same_symbol
from agent.idcard.pipeline import DecodePipeline, PipelineSettings, locate_candidates

PAYLOAD = b"blob-quads-test-0123456789-" * 3


def _rect(cx: float, cy: float, w: float, h: float, angle: float) -> np.ndarray:
    return cv2.boxPoints(((cx, cy), (w, h), angle)).astype(np.int32).reshape(-1, 1, 2)


def test_pieces_in_line_are_one_symbol_and_side_by_side_blobs_are_not() -> None:
    left, right = _rect(100, 100, 120, 40, 20), _rect(100 + 170 * np.cos(np.radians(20)),
                                                      100 + 170 * np.sin(np.radians(20)), 150, 40, 20)
    assert same_symbol(left, right) and same_symbol(right, left)
    beside = _rect(100 - 60 * np.sin(np.radians(20)), 100 + 60 * np.cos(np.radians(20)), 120, 40, 20)
    assert not same_symbol(left, beside)  # a text line above or below the strip
    turned = _rect(300, 170, 150, 40, 50)
    assert not same_symbol(left, turned)
    joined = join_pieces([left, right, beside], [4800.0, 6000.0, 4800.0])
    assert sorted(area for area, _ in joined) == [4800.0, 10800.0]


def test_quad_of_keeps_a_perspective_quad_and_drops_one_that_cuts_the_blob() -> None:
    trapezoid = np.int32([[0, 0], [400, 20], [400, 120], [0, 140]]).reshape(-1, 1, 2)
    quad = quad_of(trapezoid)
    assert overlap(quad, trapezoid.reshape(-1, 2).astype(np.float32)) > 0.97
    # A thin strip, one corner chamfered, a bump (text merged) in the middle of a long side: the
    # hull simplified to four corners puts one on the bump and cuts off the strip's end; the
    # rectangle keeps the strip whole.
    strip = np.int32([[40, 0], [600, 0], [600, 60], [330, 60], [300, 90], [270, 60], [0, 60], [0, 40]]).reshape(-1, 1, 2)
    quad = quad_of(strip)
    assert cv2.pointPolygonTest(quad.reshape(-1, 1, 2), (2.0, 58.0), False) >= 0
    assert cv2.pointPolygonTest(quad.reshape(-1, 1, 2), (598.0, 58.0), False) >= 0


def _split_frame() -> np.ndarray:
    """A long thin PDF417 (as on an Argentine DNI) on a card, turned 30 degrees, and a band of
    glare across its middle that saturates paper and bars alike."""
    symbol = np.array(pdf417gen.render_image(pdf417gen.encode(PAYLOAD, columns=10, security_level=5), scale=2,
                                             ratio=3, padding=2).convert("L"))
    card = cv2.copyMakeBorder(symbol, 40, 40, 60, 60, cv2.BORDER_CONSTANT, value=215).astype(np.float32)
    xx = np.arange(card.shape[1], dtype=np.float32)[None, :]
    card = card + 600 * np.exp(-((xx - card.shape[1] * 0.45) ** 2) / (2 * 11.0 ** 2))
    frame = np.full((1080, 1920), 90, np.float32)
    y, x = (1080 - card.shape[0]) // 2, (1920 - card.shape[1]) // 2
    frame[y:y + card.shape[0], x:x + card.shape[1]] = card
    frame = cv2.warpAffine(frame, cv2.getRotationMatrix2D((960, 540), 30, 1.0), (1920, 1080), borderValue=90)
    return np.clip(frame, 0, 255).astype(np.uint8)


def test_a_symbol_cut_by_glare_is_one_candidate_and_reads() -> None:
    frame = _split_frame()
    quads = locate_candidates(frame, PipelineSettings())
    longest = max(max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[1])) for q in quads)
    symbol_length = 2 * (17 * (10 + 4) + 1 + 4)  # modules of 10 data columns, start/stop and indicators, padding
    assert longest > 0.9 * symbol_length
    found = DecodePipeline(PipelineSettings(budget_ms=2000.0, wall_cap_ms=10000.0)).decode(frame, None)
    assert found is not None and found.data == PAYLOAD
