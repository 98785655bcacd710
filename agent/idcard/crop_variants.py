"""One candidate's crop variants for the barcode decoder: contrast and blur fixes, glare
flattening, and the PDF417 bar filters, each made once and only when its turn comes."""
from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from agent.idcard import bar_filters
from agent.idcard.deblur import wiener_separable

Crop = Callable[[], tuple[np.ndarray, float]]  # a crop of the frame and its upscale from the frame


def flatten_glare(crop: np.ndarray, bar_px: int) -> np.ndarray:
    """Remove an additive highlight: a specular reflection adds light to bars and paper alike, so
    the paper level under it (a morphological closing wider than any bar) is subtracted and only
    the bars' darkness below their own surroundings is kept (black-hat), then stretched."""
    size = max(5, bar_px | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    dark = cv2.morphologyEx(crop, cv2.MORPH_BLACKHAT, kernel)
    return cv2.normalize(255 - dark, None, 0, 255, cv2.NORM_MINMAX)


BAR_VARIANTS = frozenset({"bars_wiener", "bars_unsharp_x2", "wide_bars_wiener", "wide_bars_wiener_x2", "bars_levelled"})


class CropVariants:
    """One candidate's crops and their variants, each computed once and only when asked for: a
    variant's order in ``PipelineSettings.variant_order`` decides when its cost is paid. The two
    crops come from the pipeline's geometry (``crop`` and ``wide`` make them, each with its
    upscale from the frame), so this module knows only pixels.

    Tight crop variants, for dim or uneven light (CLAHE), mild blur (unsharp mask), blur up to
    the spec's sigma (Wiener at that sigma, scaled by the crop's upscale), a global then a local
    threshold (a binarizer other than zxing's own local average, for low contrast and printed
    copies), glare (black-hat against the local paper level) and the crop at half size (a blurred
    symbol looks sharper with fewer pixels a module). The wide crop: the blob found by edge
    density hugs the symbol, and a QR code needs four modules of quiet zone around its finder
    patterns (PDF417 two, beyond its start/stop bars) that the tight margin may cut. The PDF417
    variants (:mod:`agent.idcard.bar_filters`): levelled so the bars stand vertical, smoothed
    along the bars, sharpened across them."""

    def __init__(self, crop: Crop, wide: Crop, bar_smooth_sigma: float, spec_blur_sigma: float) -> None:
        self._make_crop, self._make_wide = crop, wide
        self.bar_smooth_sigma, self.spec_blur_sigma = bar_smooth_sigma, spec_blur_sigma
        self._cache: dict[str, tuple[np.ndarray, float]] = {}

    def _get(self, key: str, make: Callable[[], tuple[np.ndarray, float]]) -> tuple[np.ndarray, float]:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def crop(self) -> tuple[np.ndarray, float]:
        return self._get("crop", self._make_crop)

    def wide(self) -> tuple[np.ndarray, float]:
        return self._get("wide", self._make_wide)

    def levelled(self, wide: bool = False) -> tuple[np.ndarray, float]:
        source = self.wide if wide else self.crop
        return self._get(f"levelled{wide}", lambda: (bar_filters.level_bars(source()[0]), source()[1]))

    def bars_wiener(self, wide: bool = False) -> tuple[np.ndarray, float]:
        def make() -> tuple[np.ndarray, float]:
            levelled, up = self.levelled(wide)
            return bar_filters.smooth_and_deblur(levelled, self.bar_smooth_sigma,
                                                 self.spec_blur_sigma * up), up
        return self._get(f"bars_wiener{wide}", make)

    def variant(self, name: str) -> np.ndarray:
        if name.startswith("wide"):
            return self._wide_variant(name)
        crop, up = self.crop()
        if name == "plain":
            return crop
        if name == "clahe":
            return cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(crop)
        if name == "unsharp":
            return cv2.addWeighted(crop, 1.8, cv2.GaussianBlur(crop, (0, 0), 2.0), -0.8, 0)
        if name == "wiener":
            return wiener_separable(crop, self.spec_blur_sigma * up)
        if name == "otsu":
            _, otsu = cv2.threshold(cv2.GaussianBlur(crop, (3, 3), 0), 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
            return otsu
        if name == "adaptive":
            block = max(15, (min(crop.shape) // 6) | 1)  # several modules wide whatever the module size
            return cv2.adaptiveThreshold(crop, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, 2)
        if name == "glare":
            return flatten_glare(crop, round(8 * up))
        if name == "half":
            return cv2.resize(crop, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        if name == "bars_wiener":
            return self.bars_wiener()[0]
        if name == "bars_unsharp_x2":
            smooth = bar_filters.smooth_along_bars(self.levelled()[0], self.bar_smooth_sigma)
            return bar_filters.upscale(bar_filters.sharpen_across_bars(smooth))
        if name == "bars_levelled":
            return self.levelled()[0]
        raise ValueError(f"unknown variant {name!r}")

    def _wide_variant(self, name: str) -> np.ndarray:
        if name == "wide":
            return self.wide()[0]
        if name == "wide_unsharp":
            wide = self.wide()[0]
            return cv2.addWeighted(wide, 1.8, cv2.GaussianBlur(wide, (0, 0), 2.0), -0.8, 0)
        if name == "wide_bars_wiener":
            return self.bars_wiener(wide=True)[0]
        if name == "wide_bars_wiener_x2":
            return bar_filters.upscale(self.bars_wiener(wide=True)[0])
        raise ValueError(f"unknown variant {name!r}")
