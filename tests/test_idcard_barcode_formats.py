"""Which symbologies the barcode pipeline looks for, and in which variants: only PDF417 and QR
carry an identity document, the PDF417 bar filters are read as PDF417 only, the QR grid fits as
QR only (agent.idcard.pipeline.formats_for)."""
from __future__ import annotations

import cv2
import numpy as np
import pdf417gen
import segno
import zxingcpp

from agent.idcard.crop_variants import BAR_VARIANTS
from agent.idcard.pipeline import FORMATS, DecodePipeline, PipelineSettings, _read, formats_for


def _on_card(symbol: np.ndarray) -> np.ndarray:
    """A clean symbol image (dark 0, light 255) on a grey frame, with a paper margin."""
    card = cv2.copyMakeBorder(symbol, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=230)
    frame = np.full((card.shape[0] + 200, card.shape[1] + 200), 110, np.uint8)
    frame[100:100 + card.shape[0], 100:100 + card.shape[1]] = card
    return frame


def _code128(text: str) -> np.ndarray:
    image = zxingcpp.write_barcode_to_image(zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.Code128), scale=3)
    return np.array(image)


def test_a_code128_in_view_is_not_even_decoded() -> None:
    """A loyalty card's or a product's 1-D code never was a document; its readers cost CPU."""
    frame = _on_card(_code128("ABC-12345678"))
    assert zxingcpp.read_barcodes(frame)  # a plain reader sees it
    assert not zxingcpp.read_barcodes(frame, formats=FORMATS)
    budget = PipelineSettings(budget_ms=2000.0, wall_cap_ms=10000.0)
    assert DecodePipeline(budget).decode(frame, None) is None


def test_pdf417_and_qr_are_still_read_with_any_accept() -> None:
    pdf = np.array(pdf417gen.render_image(pdf417gen.encode(b"pdf-payload-123", columns=4), scale=3, ratio=3,
                                          padding=4).convert("L"))
    qr = cv2.resize(np.where(np.array(segno.make_qr(b"qr-payload-456").matrix, bool), 0, 255).astype(np.uint8),
                    None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    budget = PipelineSettings(budget_ms=2000.0, wall_cap_ms=10000.0)
    assert DecodePipeline(budget).decode(_on_card(pdf), None).data == b"pdf-payload-123"
    assert DecodePipeline(budget).decode(_on_card(qr), None).data == b"qr-payload-456"


def test_bar_filter_variants_look_for_pdf417_only_and_qr_fits_for_qr_only() -> None:
    qr = cv2.resize(np.where(np.array(segno.make_qr(b"qr-in-a-bar-variant").matrix, bool), 0, 255).astype(np.uint8),
                    None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    image = _on_card(qr)
    assert _read(image, "plain", None, formats=formats_for("plain")) is not None
    for name in BAR_VARIANTS:
        assert _read(image, name, None, formats=formats_for(name)) is None
    assert _read(image, "qr_fit0", None, formats=formats_for("qr_fit0")) is not None
    pdf = _on_card(np.array(pdf417gen.render_image(pdf417gen.encode(b"pdf", columns=3), scale=3, ratio=3,
                                                   padding=4).convert("L")))
    assert _read(pdf, "qr_fit0", None, formats=formats_for("qr_fit0")) is None
    assert _read(pdf, "bars_wiener", None, formats=formats_for("bars_wiener")) is not None
