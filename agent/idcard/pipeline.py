"""Camera frame -> raw barcode bytes: zxing-cpp on the whole frame, then OpenCV localisation.

zxing-cpp's PDF417 reader only works on nearly level symbols with modules of ~1.5 px or more,
so a hand-held card under a document camera usually needs help: find the symbol (morphological
gradient, threshold, close, contours), find it again at half resolution in a levelled window
(``refine_quad``), warp it level and upscale it, then retry with variants (a wide crop, PDF417
bar filters from :mod:`agent.idcard.bar_filters`, CLAHE, unsharp mask, Wiener, thresholds)
until one read is accepted or the CPU budget is spent. The caller's ``accept`` callback
(normally "parses as an ID document") decides which reads count, so a product barcode or a
stray QR in view does not end the search.
"""
from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import zxingcpp

from agent.idcard import qr_grid
from agent.idcard.blob_quads import join_pieces, quad_of, same_symbol
from agent.idcard.config import LIVE_FRAME_BUDGET_MS
from agent.idcard.crop_variants import BAR_VARIANTS, CropVariants
from agent.idcard.pdf417.decode import decode_levelled

# Only PDF417 and QR codes carry an identity document the parsers take (a Code 39 or Code 128
# read was always turned down by ``accept``), and zxing-cpp's 1-D readers scan every row of a
# crop: without them a PDF417 crop's read costs ~20% less CPU (13% over every variant of corpus C
# seeds 11-14), time the budget gives to the variants that read.
FORMATS = zxingcpp.BarcodeFormats((zxingcpp.BarcodeFormat.PDF417, zxingcpp.BarcodeFormat.QRCode))
PDF417_ONLY = zxingcpp.BarcodeFormats((zxingcpp.BarcodeFormat.PDF417,))
QR_ONLY = zxingcpp.BarcodeFormats((zxingcpp.BarcodeFormat.QRCode,))
Accept = Callable[[bytes, str], bool]


@dataclass(frozen=True)
class DecodedSymbol:
    data: bytes  # raw bytes, never the decoder's text rendering (NULs matter)
    format: str  # zxing-cpp's name: "PDF417" or "QRCode"
    stage: str  # which step read it, for the benchmark and diagnostics


@dataclass(frozen=True)
class PipelineSettings:
    # Give up on this frame after this much CPU time of the decoding thread; the next frame comes
    # anyway. CPU, not wall time: on a busy machine a wall budget gave every frame a fraction of
    # the work (measured on corpus C at load 5 on 2 cores: 209/258 read with 150 wall ms against
    # 222/258 with 150 CPU ms), so no frame got the variants that read it. wall_cap_ms still
    # bounds how long one frame can hold the camera loop.
    budget_ms: float = LIVE_FRAME_BUDGET_MS  # a still image: config.STILL_BUDGET_MS
    wall_cap_ms: float = 600.0
    max_candidates: int = 3
    work_width: int = 640  # localisation runs on a downscaled copy
    target_long_side: int = 1000  # crops are upscaled towards this so modules reach >= ~3 px
    max_upscale: float = 2.5
    # Measured (bench_idcard, 240 frames): candidates first then whole frame reads the same share
    # as whole frame first, at about half the median time (the whole-frame pass alone costs ~30 ms
    # and reads only level symbols). Kept switchable so the bench can show both.
    whole_frame_first: bool = False
    # PDF417-geometry variants (levelled, smoothed along the bars, sharpened across them), tried
    # right after the plain and wide crops; switchable so the bench can show their effect.
    bar_filters: bool = True
    bar_smooth_sigma: float = 2.5  # crop pixels: about one module at the smallest module and upscale
    refine_quads: bool = True  # find each candidate again at half resolution (refine_quad)
    # Variants per candidate in each round over the candidates (None: all that are left).
    rounds: tuple[int | None, ...] = (6, None)
    # Which variants of a candidate's crop are tried, in this order (see crop_variants.CropVariants). The PDF417 bar
    # filter second: one separable pass after levelling (~4 ms), it reads where the plain crop
    # does not more often than any other variant; the half-size crop early because it costs a
    # quarter of a read. Chosen on corpus C seeds 11+12 by replaying measured per-variant CPU
    # costs, checked on seeds 13 and 14; measured (150 CPU ms, same hour) against the previous
    # order (plain, wide, bar filters, ..., half last): 228 -> 231/258, 102 -> 105/119, 104 -> 106/128.
    # "qr_fit" (QR grids fitted from finder patterns, see qr_fit below) right after the wide crop,
    # where branch qr had it (after plain and wide). "pdf417_ec" (our own PDF417 decoder) before
    # the wide crop since branch pdfs: on a wide symbol of 2-2.5 px modules each zxing-cpp read
    # of its 1000-px crop cost ~50 CPU ms (load 5-9), and the budget ended after "wide" on frames the
    # fallback reads (corpus C seeds 11-14, cached frames, same minutes: 474 -> 478/505, none
    # lost, median CPU alike; right after "plain" instead: +3 -2).
    variant_order: tuple[str, ...] = ("plain", "bars_wiener", "pdf417_ec", "wide", "qr_fit", "half", "bars_unsharp_x2", "wide_bars_wiener",
                                      "wide_bars_wiener_x2", "bars_levelled", "clahe", "unsharp", "wiener", "otsu",
                                      "adaptive", "glare", "wide_unsharp")
    spec_blur_sigma: float = 1.3  # the camera specification's worst blur, in frame pixels
    # QR codes zxing-cpp locates but cannot decode are sampled again on their module grid
    # (qr_grid), for at most qr_grid_tries located symbols a frame, deconvolved in turn with each
    # of qr_grid_deblurs (Gaussian sigma in frame pixels, Wiener noise-to-signal ratio; None: not
    # deconvolved). Sigmas above the specification's 1.3 because JPEG and the warp blur too.
    qr_grid: bool = True
    qr_grid_deblurs: tuple[tuple[float, float] | None, ...] = (None, (1.0, 0.01), (1.4, 0.01), (1.4, 0.003))
    qr_grid_window: int = 9  # modules: the neighbourhood a module is compared with
    qr_grid_tries: int = 3
    # Each candidate's QR grid fitted from its finder patterns (qr_grid.fit_grid), right after the
    # plain and wide crops: zxing-cpp's own finder search misses most QR codes of 2-2.4 px modules
    # under the specification's blur.
    qr_fit: bool = True
    # "pdf417_ec" in the order: the levelled crop read by our own PDF417 decoder, whose
    # Reed-Solomon counts codewords lost to glare as erasures (half the cost of an error to
    # zxing-cpp, which ignores erasures); see agent.idcard.pdf417. Switchable for the bench.
    pdf417_ec: bool = True


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _read(gray: np.ndarray, stage: str, accept: Accept | None, hints: list | None = None,
          formats: zxingcpp.BarcodeFormats = FORMATS, **options) -> DecodedSymbol | None:
    """First accepted symbol zxing-cpp reads in ``gray``. With ``hints`` (a list), QR codes it
    located but could not decode are appended to it as (corners, version)."""
    if hints is not None:
        options["return_errors"] = True
    for result in zxingcpp.read_barcodes(gray, formats=formats, **options):
        if not result.valid:
            if hints is not None and result.format == zxingcpp.BarcodeFormat.QRCode:
                hints.extend(qr_grid.hint_of(result))
            continue
        data, fmt = bytes(result.bytes), result.format.name
        if data and (accept is None or accept(data, fmt)):
            return DecodedSymbol(data, fmt, stage)
    return None


def _read_grid(image: np.ndarray, up: float, hints: list, stage: str, accept: Accept | None,
               settings: PipelineSettings) -> DecodedSymbol | None:
    """The QR codes zxing-cpp located in ``image`` (upscaled ``up`` times from the frame) but
    could not decode, sampled again on their known module grid (:mod:`agent.idcard.qr_grid`)."""
    for corners, version in hints:
        for k, clean in enumerate(qr_grid.clean_symbols(image, corners, version, tuple(
                None if deblur is None else (deblur[0] * up, deblur[1]) for deblur in settings.qr_grid_deblurs),
                settings.qr_grid_window)):
            found = _read(clean, f"{stage}_qrgrid{k}", accept, formats=QR_ONLY, is_pure=True, try_rotate=False,
                          try_downscale=False, try_invert=False)
            if found:
                return found
    return None


def _read_pdf417_ec(levelled: np.ndarray, stage: str, accept: Accept | None) -> DecodedSymbol | None:
    """A levelled crop read by the erasure-aware fallback decoder, counted as zxing-cpp's reads
    are: only when ``accept`` (the parsers) takes it."""
    data = decode_levelled(levelled)
    if data and (accept is None or accept(data, "PDF417")):
        return DecodedSymbol(data, "PDF417", stage)
    return None


def locate_candidates(gray: np.ndarray, settings: PipelineSettings) -> list[np.ndarray]:
    """Quadrilaterals (4x2 float32, full-resolution pixels) around dense high-gradient blobs,
    best first. A barcode is the densest patch of edges on a card; text lines are thinner and
    get removed by the opening step."""
    scale = settings.work_width / gray.shape[1]
    small = cv2.resize(gray, (settings.work_width, round(gray.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    mask = _edge_density_mask(small, blur=11, close=9, opening=7)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    min_area = small.shape[0] * small.shape[1] * 0.003
    kept: list[tuple[np.ndarray, float]] = []
    for contour in contours:
        area = cv2.contourArea(contour)
        if area < min_area:
            continue
        (w, h) = cv2.minAreaRect(contour)[1]
        if min(w, h) < 8 or area / max(w * h, 1.0) < 0.5:
            continue
        kept.append((contour, area))
    scored: list[tuple[float, np.ndarray]] = []
    # A glare band across a PDF417 cuts its blob in two, each piece a candidate that does not
    # read; pieces in line are one candidate again (blob_quads.join_pieces).
    for area, contour in join_pieces([c for c, _ in kept], [a for _, a in kept]):
        (w, h) = cv2.minAreaRect(contour)[1]
        scored.append((area * min(1.0, area / max(w * h, 1.0)), quad_of(contour) / scale))
    scored.sort(key=lambda item: -item[0])
    return [quad for _, quad in scored[: settings.max_candidates]]


def _edge_density_mask(small: np.ndarray, blur: int, close: int, opening: int) -> np.ndarray:
    """Where edges are dense: morphological gradient, Otsu, then the share of edge pixels around
    each pixel, thresholded, closed and opened (kernel sizes in ``small``'s pixels)."""
    kernel3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    gradient = cv2.morphologyEx(small, cv2.MORPH_GRADIENT, kernel3)
    _, mask = cv2.threshold(gradient, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    # Edge *density*: a barcode is edges everywhere, a card border or a desk edge is one line.
    # Averaging then thresholding keeps the symbol and drops lines that would otherwise merge
    # with it (a merged blob gives a skewed quadrilateral, which PDF417 does not survive).
    density = cv2.blur(mask, (blur, blur))
    _, mask = cv2.threshold(density, 110, 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close, close)))
    return cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (opening, opening)))


def refine_quad(gray: np.ndarray, quad: np.ndarray, scale: float = 0.5,
                margin: tuple[float, float] = (0.5, 0.6)) -> np.ndarray:
    """The candidate's quadrilateral found again, inside a generous rectified window around it
    at half the frame's resolution (the localiser works at a third). At a third, a 2-px module
    is under a pixel: the blob cuts corners off the symbol or merges with text beside it, and
    a crop that misses a corner or shears the rows does not read. In the levelled window the
    symbol is nearly axis-aligned and alone, so its blob is the largest one. Returns the
    original quadrilateral when nothing convincing is found."""
    pts = _expand(_order(quad), margin)
    width = float(max(np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[2] - pts[3]))) * scale
    height = float(max(np.linalg.norm(pts[3] - pts[0]), np.linalg.norm(pts[2] - pts[1]))) * scale
    out_w, out_h = max(8, round(width)), max(8, round(height))
    matrix = cv2.getPerspectiveTransform(pts.astype(np.float32),
                                         np.float32([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]]))
    window = cv2.warpPerspective(gray, matrix, (out_w, out_h), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    # Kernels ~1.4x the localiser's: the same physical size at this finer scale.
    mask = _edge_density_mask(window, blur=15, close=11, opening=9)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return quad
    areas = [cv2.contourArea(contour) for contour in contours]
    largest = max(areas)
    if largest < 0.1 * out_w * out_h:
        return quad
    # Glare across the symbol can split its blob in two: big pieces are joined (C seeds 11+12:
    # one more read, none lost), and small ones in line with the biggest (blob_quads.same_symbol).
    biggest = contours[areas.index(largest)]
    pieces = [contour for contour, area in zip(contours, areas)
              if area >= 0.25 * largest or (area >= 0.02 * largest and same_symbol(biggest, contour))]
    found = quad_of(np.concatenate(pieces))[None].astype(np.float32)
    return cv2.perspectiveTransform(found, np.linalg.inv(matrix).astype(np.float32))[0]


def _order(quad: np.ndarray) -> np.ndarray:
    """Corners in order with the long side first (top-left, top-right, bottom-right, bottom-left)."""
    center = quad.mean(axis=0)
    angles = np.arctan2(quad[:, 1] - center[1], quad[:, 0] - center[0])
    pts = quad[np.argsort(angles)]
    if np.linalg.norm(pts[1] - pts[0]) < np.linalg.norm(pts[2] - pts[1]):
        pts = np.roll(pts, -1, axis=0)
    return pts


def _expand(pts: np.ndarray, margin: tuple[float, float]) -> np.ndarray:
    """Ordered corners moved outwards by ``margin`` of the long and the short side."""
    along = (pts[1] - pts[0] + pts[2] - pts[3]) / 2
    across = (pts[3] - pts[0] + pts[2] - pts[1]) / 2
    signs = np.float32([[-1, -1], [1, -1], [1, 1], [-1, 1]])
    return pts + signs[:, :1] * along * margin[0] / 2 + signs[:, 1:] * across * margin[1] / 2


def rectify(gray: np.ndarray, quad: np.ndarray, settings: PipelineSettings,
            margin: tuple[float, float] = (0.16, 0.12)) -> np.ndarray:
    return rectify_scaled(gray, quad, settings, margin)[0]


def rectify_scaled(gray: np.ndarray, quad: np.ndarray, settings: PipelineSettings,
                   margin: tuple[float, float] = (0.16, 0.12)) -> tuple[np.ndarray, float]:
    """Warp the quadrilateral (plus a quiet-zone margin) to a level, upscaled rectangle.

    The margin is generous along the long side: the gradient blob often stops short of
    PDF417's wide start/stop bars, and without them and their quiet zone nothing is found.
    Returns the crop and its upscale factor (crop pixels per frame pixel)."""
    pts = _expand(_order(quad), margin)
    width = float(max(np.linalg.norm(pts[1] - pts[0]), np.linalg.norm(pts[2] - pts[3])))
    height = float(max(np.linalg.norm(pts[3] - pts[0]), np.linalg.norm(pts[2] - pts[1])))
    up = min(settings.max_upscale, max(1.0, settings.target_long_side / max(width, 1.0)))
    out_w, out_h = max(8, round(width * up)), max(8, round(height * up))
    dst = np.float32([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]])
    matrix = cv2.getPerspectiveTransform(pts.astype(np.float32), dst)
    return cv2.warpPerspective(gray, matrix, (out_w, out_h), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE), up


# Variants that keep the crop's geometry and blur, where a located QR code's grid can be sampled.
_GRID_SOURCES = {"plain", "clahe", "unsharp"}


def formats_for(variant: str) -> zxingcpp.BarcodeFormats:
    """What a variant can hold: the bar filters make sense of PDF417 rows only (a QR code comes
    out of them smeared), a QR grid fitted from finder patterns is a QR code; the rest either."""
    if variant in BAR_VARIANTS:
        return PDF417_ONLY
    if variant.startswith("qr_fit"):
        return QR_ONLY
    return FORMATS


class DecodePipeline:
    """Stateless apart from its settings; safe to share between threads."""

    def __init__(self, settings: PipelineSettings | None = None) -> None:
        self.settings = settings or PipelineSettings()

    def _variants(self, gray: np.ndarray, quad: np.ndarray) -> Iterator[tuple[str, np.ndarray, float | None]]:
        """The candidate's variants in :attr:`PipelineSettings.variant_order`, each made when its
        turn comes (a read ends the search before the costlier ones are made). Each comes with
        its upscale from the frame when its geometry and blur are the frame's (a QR code located
        there can be sampled again on its grid), else ``None``. ``qr_fit`` in the order stands for
        the symbols re-rendered from the QR grid fitted to the candidate's finder patterns."""
        settings = self.settings
        crops = CropVariants(lambda: rectify_scaled(gray, quad, settings),
                             lambda: rectify_scaled(gray, quad, settings, margin=(0.4, 0.4)),
                             settings.bar_smooth_sigma, settings.spec_blur_sigma)
        for name in self.settings.variant_order:
            if name in BAR_VARIANTS and not self.settings.bar_filters:
                continue
            if name == "pdf417_ec":
                if self.settings.pdf417_ec:
                    yield name, crops.levelled(wide=True)[0], None
                continue
            if name == "qr_fit":
                if self.settings.qr_fit:
                    yield from self._fitted_qr(gray, quad)
                continue
            if name in _GRID_SOURCES:
                upscale: float | None = crops.crop()[1]
            elif name == "wide":
                upscale = crops.wide()[1]
            else:
                upscale = None
            yield name, crops.variant(name), upscale

    def _fitted_qr(self, gray: np.ndarray, quad: np.ndarray) -> Iterator[tuple[str, np.ndarray, float | None]]:
        fit = qr_grid.fit_grid(gray, quad)
        if fit is not None:
            for k, clean in enumerate(qr_grid.clean_symbols(gray, fit[0], fit[1], self.settings.qr_grid_deblurs,
                                                            self.settings.qr_grid_window)):
                yield f"qr_fit{k}", clean, None

    def decode(self, image: np.ndarray, accept: Accept | None = None) -> DecodedSymbol | None:
        """First accepted symbol in the frame, or ``None`` when nothing is read within the budget."""
        cpu_deadline = time.thread_time() + self.settings.budget_ms / 1000.0
        wall_deadline = time.perf_counter() + self.settings.wall_cap_ms / 1000.0
        gray = to_gray(image)
        grid_tries = self.settings.qr_grid_tries if self.settings.qr_grid else 0

        def read(variant: np.ndarray, stage: str, up: float | None, **options) -> DecodedSymbol | None:
            nonlocal grid_tries
            hints: list | None = [] if up is not None and grid_tries > 0 else None
            found = _read(variant, stage, accept, hints, **options)
            if found or not hints:
                return found
            grid_tries -= 1  # one located symbol is tried once a frame: later variants find it again
            return _read_grid(variant, up, hints[:1], stage, accept, self.settings)

        if self.settings.whole_frame_first:
            found = read(gray, "whole_frame", 1.0)
            if found:
                return found
        # Two rounds over the candidates: the variants that read most (plain, wide, the bar
        # filters) on every candidate first, then the rest. The blob ranked first is often a
        # photo or a text block, and its long tail of variants used to spend the whole budget
        # before the real symbol, ranked second, was tried at all.
        quads = locate_candidates(gray, self.settings)
        if self.settings.refine_quads:
            quads = [refine_quad(gray, quad) for quad in quads]
        streams = [(index, self._variants(gray, quad)) for index, quad in enumerate(quads)]
        for take in self.settings.rounds:
            for index, stream in streams:
                for name, variant, up in itertools.islice(stream, take):
                    if name == "pdf417_ec":
                        found = _read_pdf417_ec(variant, f"candidate{index}_{name}", accept)
                    else:
                        found = read(variant, f"candidate{index}_{name}", up, formats=formats_for(name),
                                     try_downscale=False, try_invert=False)
                    if found:
                        return found
                    if time.thread_time() > cpu_deadline or time.perf_counter() > wall_deadline:
                        return None
        if not self.settings.whole_frame_first:
            return read(gray, "whole_frame", 1.0)
        return None
