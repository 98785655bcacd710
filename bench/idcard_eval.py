"""Scoring helpers for the ID-card benchmark: truth vs read documents, timing, Tesseract baselines.

A frame counts as read when every key field is right (country, document type, number, birth
date, sex, expiry); names are a second figure. A false read is a document from a frame without
an identity document; a wrong read is a document with a key field wrong.
"""
from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from agent.idcard.errors import IdCardError
from bench.common import percentile
from agent.idcard.parsers import parse_any
from agent.idcard.schema import IdDocument

KEY = ("country", "document_type", "document_number", "birth_date", "sex", "expiry")
NAMES = ("first_name", "second_name", "first_surname", "second_surname")
Decoder = Callable[[np.ndarray], IdDocument | None]


def parse_or_none(data: bytes, symbology: str) -> IdDocument | None:
    try:
        return parse_any(data, symbology)
    except IdCardError:
        return None


def key_of(doc: IdDocument) -> tuple:
    return tuple(getattr(doc, k) for k in KEY)


def names_of(doc: IdDocument) -> tuple:
    return tuple(getattr(doc, k) for k in NAMES)


@dataclass
class Score:
    name: str
    frames: int = 0  # frames with an identity document
    key_ok: int = 0
    names_ok: int = 0
    wrong: int = 0
    false: int = 0
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    def row(self) -> str:
        share = self.key_ok / self.frames if self.frames else float("nan")
        names = self.names_ok / self.frames if self.frames else float("nan")
        wall = sorted(self.wall_ms)
        return (f"{self.name:<34} {self.key_ok:>4}/{self.frames:<4} {share:>6.1%} {names:>7.1%} {self.wrong:>5} "
                f"{self.false:>5} {statistics.median(wall):>8.1f} {percentile(wall, 90):>8.1f} "
                f"{statistics.median(self.cpu_ms):>8.1f}")


HEADER = (f"{'decoder':<34} {'key fields ok':>16} {'names':>7} {'wrong':>5} {'false':>5} {'med ms':>8} "
          f"{'p90 ms':>8} {'cpu med':>8}")


def evaluate(name: str, decoder: Decoder, grays: list[np.ndarray], truths: list[IdDocument | None]) -> Score:
    score = Score(name)
    for gray, truth in zip(grays, truths):
        wall, cpu = time.perf_counter(), time.process_time()
        doc = decoder(gray)
        score.wall_ms.append((time.perf_counter() - wall) * 1000)
        score.cpu_ms.append((time.process_time() - cpu) * 1000)
        if truth is None:
            score.false += doc is not None
            continue
        score.frames += 1
        if doc is None:
            continue
        if key_of(doc) == key_of(truth):
            score.key_ok += 1
            score.names_ok += names_of(doc) == names_of(truth)
        else:
            score.wrong += 1
    return score


_MRZ_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789<"
_TESSERACT = f"--psm 6 -c tessedit_char_whitelist={_MRZ_CHARS}"


def _mrz_from_text(text: str) -> IdDocument | None:
    """Any three consecutive lines of 25-32 MRZ characters that parse as a TD1."""
    lines = [re.sub(r"[^A-Z0-9<]", "", ln.upper()) for ln in text.splitlines()]
    lines = [ln for ln in lines if 25 <= len(ln) <= 32]
    for start in range(len(lines) - 2):
        doc = parse_or_none("\n".join(ln[:30] for ln in lines[start:start + 3]).encode(), "MRZ")
        if doc:
            return doc
    return None


def tesseract_whole_frame(gray: np.ndarray) -> IdDocument | None:
    """Tesseract (eng, MRZ whitelist) on the whole frame, as it comes."""
    import pytesseract

    return _mrz_from_text(pytesseract.image_to_string(gray, config=_TESSERACT))


def tesseract_on_levelled_zone(gray: np.ndarray) -> IdDocument | None:
    """Engine comparison: our zone finder and levelling, then Tesseract instead of our classifier."""
    import cv2
    import pytesseract

    from agent.idcard.mrz.locate import find_blocks, level

    for block in find_blocks(gray):
        levelled = level(gray, block)
        for image in (levelled, cv2.rotate(levelled, cv2.ROTATE_180)):
            doc = _mrz_from_text(pytesseract.image_to_string(image, config=_TESSERACT))
            if doc:
                return doc
    return None
