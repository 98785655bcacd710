"""PDF417 geometry filters (levelling, smoothing along the bars, 1-D sharpening across them) and
the half-resolution re-localisation of a candidate, on symbols drawn by zxing-cpp's writer."""
from __future__ import annotations

import cv2
import numpy as np
import zxingcpp

from agent.idcard import bar_filters
from agent.idcard.pipeline import refine_quad


def _pdf417(module: int = 3, row: int = 3) -> np.ndarray:
    barcode = zxingcpp.create_barcode(b"1234567890" * 8, zxingcpp.BarcodeFormat.PDF417)
    symbol = np.array(zxingcpp.write_barcode_to_image(barcode))
    symbol = cv2.resize(symbol, None, fx=module, fy=module * row / 3, interpolation=cv2.INTER_NEAREST)
    return cv2.copyMakeBorder(symbol, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=255)


def _shear(image: np.ndarray, lean: float) -> np.ndarray:
    h, w = image.shape
    matrix = np.float32([[1, lean, -lean * h / 2], [0, 1, 0]])
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_CUBIC, borderValue=255)


def _read(image: np.ndarray) -> bool:
    return bool(zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.PDF417, try_downscale=False))


def _lean(image: np.ndarray) -> float:
    return float(np.tan(bar_filters._gradient_angle(image)))


def test_level_bars_stands_leaning_bars_upright() -> None:
    leaning = _shear(_pdf417(), 0.08)  # bars lean by ~4.6 degrees
    assert abs(_lean(leaning)) > 0.06
    assert abs(_lean(bar_filters.level_bars(leaning))) < 0.01


def test_level_bars_follows_a_lean_that_changes_across_the_symbol() -> None:
    """A tilted card: the bars lean one way at the left end and the other way at the right."""
    upright = _pdf417()
    h, w = upright.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    lean = 0.1 * (xs / w - 0.5) * 2  # -0.1 at the left edge, +0.1 at the right
    keystoned = cv2.remap(upright, xs + lean * (ys - h / 2), ys, cv2.INTER_CUBIC, borderValue=255)
    levelled = bar_filters.level_bars(keystoned)
    for part in (slice(0, w // 4), slice(3 * w // 4, w)):
        assert abs(_lean(keystoned[:, part])) > 0.04
        assert abs(_lean(levelled[:, part])) < 0.02


def test_level_bars_turns_a_symbol_whose_bars_lie_horizontal() -> None:
    lying = cv2.rotate(_pdf417(), cv2.ROTATE_90_COUNTERCLOCKWISE)
    levelled = bar_filters.level_bars(lying)
    assert levelled.shape == lying.shape[::-1]
    assert abs(_lean(levelled)) < 0.02


def test_smoothing_along_the_bars_removes_noise_and_keeps_every_edge() -> None:
    clean = _pdf417(module=3, row=4).astype(np.float32) * 0.6 + 50  # no clipping of the noise
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 40, clean.shape), 0, 255).astype(np.uint8)
    along = bar_filters.smooth_along_bars(noisy, 2.5)
    isotropic = cv2.GaussianBlur(noisy, (0, 0), 2.5)
    # Noise: compared with the clean symbol under the same filter (rows of 4 modules are
    # themselves averaged near their boundaries, which the reader does not mind).
    reference = bar_filters.smooth_along_bars(clean.astype(np.uint8), 2.5).astype(np.float32)
    assert float(np.abs(along - reference).mean()) < 0.4 * float(np.abs(noisy - clean).mean())
    # Across the bars nothing was averaged: each row still switches where the clean row does,
    # which an isotropic blur of the same size cannot keep.
    edges = lambda image: np.abs(np.diff(image.astype(np.float32), axis=1)).mean()  # noqa: E731
    assert edges(along) > 1.5 * edges(isotropic)


def test_wiener_across_bars_undoes_a_horizontal_blur() -> None:
    sharp = _pdf417(module=3, row=4)
    blurred = cv2.GaussianBlur(sharp, (0, 0), sigmaX=2.0, sigmaY=0.01)
    restored = bar_filters.wiener_across_bars(blurred, 2.0)
    error = lambda image: float(np.abs(image.astype(np.float32) - sharp).mean())  # noqa: E731
    assert error(restored) < 0.75 * error(blurred)


def test_the_bar_filters_read_a_small_noisy_blurred_symbol_that_the_plain_crop_does_not() -> None:
    """2-px modules, blur sigma 1.2, strong noise: the plain crop fails, levelled + smoothed along
    the bars + 1-D Wiener across them reads (the corpus-C case the filters were made for)."""
    symbol = _pdf417(module=2, row=3).astype(np.float32) * 0.7 + 40
    blurred = cv2.GaussianBlur(symbol, (0, 0), 1.2)
    noisy = blurred + np.random.default_rng(7).normal(0, 14, blurred.shape)
    crop = cv2.resize(np.clip(noisy, 0, 255).astype(np.uint8), None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)
    assert not _read(crop)
    smooth = bar_filters.smooth_along_bars(bar_filters.level_bars(crop), 2.5)
    assert _read(bar_filters.wiener_across_bars(smooth, 1.2 * 1.5))


def test_refine_quad_recovers_a_symbol_whose_blob_was_sheared_and_cut_short() -> None:
    from agent.idcard.pipeline import PipelineSettings, rectify

    symbol = _pdf417(module=3)[20:-20, 20:-20]
    frame = np.full((700, 1000), 200, np.uint8)
    h, w = symbol.shape
    frame[200:200 + h, 250:250 + w] = symbol
    true = np.float32([[250, 200], [250 + w, 200], [250 + w, 200 + h], [250, 200 + h]])
    rough = true + np.float32([[60, 20], [-10, 0], [0, -25], [45, 0]])  # what a merged/cut blob gives
    settings = PipelineSettings()
    assert not _read(rectify(frame, rough, settings))
    refined = refine_quad(frame, rough)
    assert _read(rectify(frame, refined, settings))
    # Nothing convincing in the window (a blank patch): the candidate is kept as it was.
    blank = np.full((700, 1000), 200, np.uint8)
    assert np.array_equal(refine_quad(blank, rough), rough)


def test_smooth_and_deblur_is_the_two_filters_in_one_pass() -> None:
    """The one-pass filter the pipeline tries second equals smoothing along the bars then the
    1-D Wiener across them (they act on different axes), up to rounding (grey levels kept away
    from 0 and 255, where the two-pass version clips its overshoot in between)."""
    symbol = cv2.GaussianBlur(_pdf417(module=2).astype(np.float32) * 0.5 + 60, (0, 0), 1.2)
    noisy = np.clip(symbol + np.random.default_rng(3).normal(0, 12, symbol.shape), 0, 255).astype(np.uint8)
    one_pass = bar_filters.smooth_and_deblur(noisy, 2.5, 1.2).astype(np.float32)
    two_pass = bar_filters.wiener_across_bars(bar_filters.smooth_along_bars(noisy, 2.5), 1.2).astype(np.float32)
    assert np.abs(one_pass - two_pass)[10:-10].max() <= 3  # the borders are extended differently
    assert np.abs(one_pass - noisy).mean() > 5  # it did filter


def test_wiener_kernel_keeps_the_grey_level_and_boosts_edges() -> None:
    kernel = bar_filters.wiener_kernel(2.0)
    assert abs(float(kernel.sum()) - 1.0) < 1e-5 and np.allclose(kernel, kernel[::-1])
    assert kernel[len(kernel) // 2] > 1.0 and kernel.min() < 0  # a sharpening kernel, not a blur
