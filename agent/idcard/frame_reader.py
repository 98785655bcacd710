"""One camera frame -> an identity document, from its MRZ or its barcode, whichever validates.

The MRZ is tried first: finding the zone costs a few ms, and on the cards that have both (the
Colombian cedula digital's QR is opaque, Chilean backs carry a QR and an MRZ) the MRZ holds the
data. When it does not validate, the barcode pipeline runs. Either way a result is a parsed
document; a frame that shows an MRZ which could not be validated is reported as such, so the
attendant is told the card was recognised but not read, not that it is not an identity document.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from agent.idcard.errors import IdCardError
from agent.idcard.mrz.glyphs import FontMissing
from agent.idcard.mrz.reader import read_mrz
from agent.idcard.parsers import parse_any
from agent.idcard.pipeline import DecodePipeline, to_gray
from agent.idcard.schema import IdDocument

log = logging.getLogger(__name__)
MRZ_UNREADABLE_ES = "cédula digital: la banda MRZ no se pudo leer; acerque la tarjeta o digite el número"
MRZ_UNREADABLE_EN = "digital ID card: the MRZ could not be read; move the card closer or type the number"


@dataclass
class FrameResult:
    document: IdDocument | None = None
    source: str | None = None  # "MRZ" or the barcode format ("PDF417", "QRCode", ...)
    mrz_seen: bool = False  # an MRZ-shaped zone was seen but did not validate
    rejected: list[IdCardError] = field(default_factory=list)  # codes read that are no document we take


class FrameReader:
    """Stateless apart from its settings; safe to share between threads."""

    def __init__(self, pipeline: DecodePipeline, *, mrz: bool = True, mrz_budget_ms: float = 120.0) -> None:
        self.pipeline = pipeline
        self.mrz = mrz
        self.mrz_budget_ms = mrz_budget_ms

    def _from_mrz(self, gray: np.ndarray, result: FrameResult) -> bool:
        try:
            attempt = read_mrz(gray, self.mrz_budget_ms)
        except FontMissing:
            # A station without the OCR-B font still reads barcodes; say so once, loudly.
            log.warning("lectura de MRZ apagada: falta la fuente OCR-B (instale el paquete Debian fonts-ocr-b) "
                        "[mrz_font_missing]")
            self.mrz = False
            return False
        if attempt.text is None:
            result.mrz_seen = attempt.zone_seen
            return False
        try:
            result.document, result.source = parse_any(attempt.text.encode("ascii"), "MRZ"), "MRZ"
            return True
        except IdCardError as exc:  # validated text, but a state or layout we do not take
            result.rejected.append(exc)
            result.mrz_seen = True
            return False

    def read(self, image: np.ndarray) -> FrameResult:
        gray = to_gray(image)
        result = FrameResult()
        if self.mrz and self._from_mrz(gray, result):
            return result
        parsed: dict[str, IdDocument] = {}

        def accept(data: bytes, symbology: str) -> bool:
            try:
                parsed["doc"] = parse_any(data, symbology)
                return True
            except IdCardError as exc:  # a foreign or damaged code: keep looking
                result.rejected.append(exc)
                return False

        symbol = self.pipeline.decode(gray, accept)
        if symbol is not None:
            result.document, result.source = parsed["doc"], symbol.format
        return result
