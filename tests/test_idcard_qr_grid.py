"""QR codes read on their module grid (agent.idcard.qr_grid): the fixed patterns against real
symbols, the grid fit on a frame raw zxing-cpp and the rest of the pipeline cannot read, and what
the fit refuses."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import segno
import zxingcpp

from agent.idcard import qr_grid
from agent.idcard.pipeline import DecodePipeline, PipelineSettings, _read

PAYLOAD = (b"https://portal.sidiv.registrocivil.cl/docstatus?RUN=12345678-5&type=CEDULA"
           b"&serial=123456789&mrz=123456789")


@pytest.mark.parametrize("version", [1, 2, 6, 7, 9, 14])
def test_fixed_patterns_match_a_generated_symbol_of_that_version(version: int) -> None:
    """Finders, separators, timing, alignment, version information and the dark module, as
    qr_grid draws them, are the modules segno (an independent encoder) puts there."""
    symbol = segno.make_qr(b"x" * (version * 5), version=version, error="l", boost_error=False)
    dark = np.array(symbol.matrix, bool)
    fixed, fixed_dark = qr_grid.function_patterns(version)
    assert dark.shape == fixed.shape
    assert np.array_equal(dark[fixed], fixed_dark[fixed])
    # The data region is left to sampling: a good share of it differs from any fixed colour.
    assert fixed.sum() < 0.5 * fixed.size


def _frame(module_px: float, blur: float, angle: float) -> np.ndarray:
    """A version-6 QR (the Chilean card's URL) on a card on a counter: ``module_px`` camera pixels
    a module, turned ``angle`` degrees, Gaussian blur ``blur``, sensor noise, JPEG 80."""
    symbol = segno.make_qr(PAYLOAD, error="m", boost_error=False)
    assert symbol.version == 6
    cells = cv2.copyMakeBorder(np.where(np.array(symbol.matrix, bool), 30, 220).astype(np.uint8), 4, 4, 4, 4,
                               cv2.BORDER_CONSTANT, value=220)
    n = cells.shape[0]
    side = round(n * module_px)
    fine = cv2.resize(cells, (n * 10, n * 10), interpolation=cv2.INTER_NEAREST)
    printed = cv2.resize(fine, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    frame = np.full((600, 800), 120, np.float32)
    card = np.full((side + 80, side + 120), 225, np.float32)
    card[40:40 + side, 60:60 + side] = printed
    frame[150:150 + card.shape[0], 200:200 + card.shape[1]] = card
    frame = cv2.warpAffine(frame, cv2.getRotationMatrix2D((400, 300), angle, 1.0), (800, 600), borderValue=120)
    frame = cv2.GaussianBlur(frame, (0, 0), blur) + np.random.default_rng(7).normal(0, 4, frame.shape)
    ok, jpeg = cv2.imencode(".jpg", np.clip(frame, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return cv2.imdecode(jpeg, cv2.IMREAD_GRAYSCALE)


def test_a_blurred_qr_of_2_px_modules_is_read_only_on_its_fitted_grid() -> None:
    frame = _frame(2.2, 1.2, 20)
    assert not zxingcpp.read_barcodes(frame)
    unlimited = {"budget_ms": 5000.0, "wall_cap_ms": 20000.0}
    accept = lambda data, _fmt: data == PAYLOAD  # noqa: E731
    assert DecodePipeline(PipelineSettings(qr_grid=False, qr_fit=False, **unlimited)).decode(frame, accept) is None
    found = DecodePipeline(PipelineSettings(**unlimited)).decode(frame, accept)
    # On its grid either way: fitted from the finder patterns, or where zxing-cpp located it
    # (since the localiser's tighter quadrilaterals, blob_quads.quad_of, the plain crop locates it).
    assert found is not None and found.data == PAYLOAD and ("qr_fit" in found.stage or "qrgrid" in found.stage)


def test_the_fit_refuses_a_wide_blob_and_a_square_without_finder_patterns() -> None:
    rng = np.random.default_rng(3)
    modules = np.where(rng.random((45, 45)) < 0.5, 30, 220).astype(np.uint8)
    texture = cv2.resize(modules, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
    frame = np.full((400, 400), 200, np.uint8)
    frame[65:200, 65:200] = texture
    square = np.float32([[65, 65], [200, 65], [200, 200], [65, 200]])
    assert qr_grid.fit_grid(frame, square) is None
    wide = np.float32([[20, 150], [380, 150], [380, 250], [20, 250]])
    assert qr_grid.fit_grid(frame, wide) is None


def test_a_located_qr_that_does_not_decode_leaves_its_corners_and_version() -> None:
    """zxing-cpp reports a QR code whose data is damaged (checksum error) with its outer corners
    in the symbol's own orientation; the pipeline keeps them as a grid hint."""
    symbol = segno.make_qr(PAYLOAD, error="l", boost_error=False)
    cells = np.where(np.array(symbol.matrix, bool), 0, 255).astype(np.uint8)
    cells[12:30, 12:30] = np.where(np.random.default_rng(5).random((18, 18)) < 0.5, 0, 255)  # beyond level L
    image = cv2.copyMakeBorder(cv2.resize(cells, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST),
                               40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255)
    image = cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE)
    hints: list = []
    assert _read(image, "test", None, hints, try_downscale=False) is None
    assert len(hints) == 1
    corners, version = hints[0]
    assert version == symbol.version
    side = 4 * cells.shape[0]
    # Turned clockwise, the symbol's top-left corner is at the image's top right.
    expected = np.float32([[40 + side, 40], [40 + side, 40 + side], [40, 40 + side], [40, 40]])
    assert np.abs(corners - expected).max() <= 2
