"""Synthetic camera frames of ID-card backs carrying an ICAO TD1 MRZ (OCR-B), for tests and the
MRZ benchmark corpus.

A frame is 1920x1080: a card (pale print, a few text lines, sometimes the opaque QR of the
Colombian cedula digital) whose MRZ characters are 14-40 px high in the frame, at any angle with
perspective tilt, blur, noise, dim light, glare over the card and JPEG compression. A share of the
cards carry no MRZ (ordinary text where it would be) to count false reads. People are made up.

Test-fixture code: draws text with Pillow and the OCR-B font (``fonts-ocr-b``), QR with ``segno``.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np

from agent.idcard import samples
from agent.idcard.mrz.glyphs import font_path

FRAME_W, FRAME_H = 1920, 1080
CARD_MM = (85.6, 54.0)
MRZ_KINDS = {"co_digital": "CO", "cl_mrz": "CL", "ar_mrz": "AR", "pe_mrz": "PE"}
DEFAULT_WEIGHTS = {"co_digital": 40, "cl_mrz": 20, "ar_mrz": 15, "pe_mrz": 15, "no_mrz": 10}


@dataclass(frozen=True)
class MrzFrame:
    kind: str
    jpeg: bytes
    mrz: bytes | None  # the true MRZ text; None when the card has none
    person: samples.SyntheticPerson | None
    params: dict


def _person(kind: str, rng: random.Random) -> samples.SyntheticPerson:
    country = MRZ_KINDS[kind]
    person = samples.random_person(rng, "AR" if country == "PE" else country)
    if country == "PE":
        return samples.SyntheticPerson("PE", str(rng.randint(10_000_000, 79_999_999)), person.first_name,
                                       person.second_name, person.first_surname, person.second_surname,
                                       person.sex, person.birth_date, None)
    return person


def _text(card, xy: tuple[int, int], text: str, size: float, fill: int, font_file: str, stroke: int = 0) -> None:
    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype(font_file, max(6, round(size)))
    ImageDraw.Draw(card).text(xy, text, font=font, fill=(fill, fill, fill), stroke_width=stroke,
                              stroke_fill=(fill, fill, fill))


def _card(kind: str, mrz: bytes | None, rng: random.Random, px_per_mm: float) -> np.ndarray:
    from PIL import Image

    w, h = round(CARD_MM[0] * px_per_mm), round(CARD_MM[1] * px_per_mm)
    tint = tuple(rng.randint(200, 245) for _ in range(3))
    card = Image.new("RGB", (w, h), tint)
    array = np.asarray(card).copy()
    for _ in range(rng.randint(3, 8)):  # guilloche-like fine lines in the print
        y0 = rng.randrange(h)
        pts = np.array([[x, y0 + 6 * math.sin(x / rng.uniform(8, 30) + rng.random())] for x in range(0, w, 4)],
                       np.int32)
        cv2.polylines(array, [pts], False, [c - rng.randint(10, 35) for c in tint], 1, cv2.LINE_AA)
    card = Image.fromarray(array)
    font_file = str(font_path())
    cap_px = 2.45 * px_per_mm  # ICAO: OCR-B size 1, about 2.4 mm high, 2.54 mm pitch
    for row in range(rng.randint(2, 4)):  # printed data above the MRZ (not OCR-B sized)
        label = rng.choice(["LUGAR DE NACIMIENTO", "FECHA DE EXPEDICION", "ESTATURA 1.68", "G.S. RH O+",
                            "REGISTRADOR NACIONAL", "DOMICILIO"])
        _text(card, (round(4 * px_per_mm), round((6 + row * 7) * px_per_mm)), label, cap_px * 0.9, 60, font_file)
    if kind == "co_digital":  # the opaque QR beside the data
        import segno

        qr = segno.make_qr(bytes(rng.randrange(256) for _ in range(60)), error="m")
        matrix = (1 - np.array(qr.matrix, np.uint8)) * 255
        side = round(22 * px_per_mm)
        qr_img = cv2.resize(np.pad(matrix, 2, constant_values=255), (side, side), interpolation=cv2.INTER_NEAREST)
        card.paste(Image.fromarray(qr_img).convert("RGB"), (w - side - round(4 * px_per_mm), round(3 * px_per_mm)))
    top = round(h - (3 * 4.1 + 2.5) * px_per_mm)
    lines = mrz.decode().split("\n") if mrz else [
        rng.choice(["REPUBLICA DE COLOMBIA IDENTIFICACION", "SERVICIO DE REGISTRO CIVIL"]),
        "FIRMA DEL TITULAR", ""]
    size = cap_px / 0.7  # OCR-B cap height is about 0.7 of the font size
    stroke = rng.choice([0, 0, 0, 1]) if cap_px > 22 else 0
    for index, line in enumerate(lines):
        x = round(rng.uniform(3.5, 5.5) * px_per_mm)
        _text(card, (x, top + round(index * 4.1 * px_per_mm)), line, size, rng.randint(10, 50), font_file, stroke)
    return np.asarray(card)[:, :, ::-1].copy()


def _background(rng: random.Random) -> np.ndarray:
    frame = np.empty((FRAME_H, FRAME_W, 3), np.uint8)
    frame[:] = [rng.randint(30, 170) for _ in range(3)]
    for _ in range(rng.randint(2, 6)):
        center = (rng.randrange(FRAME_W), rng.randrange(FRAME_H))
        cv2.circle(frame, center, rng.randint(40, 300), [rng.randint(0, 255) for _ in range(3)], -1)
    return cv2.GaussianBlur(frame, (0, 0), 3)


def _placement(card_w: int, card_h: int, angle: float, tilt: float, rng: random.Random) -> np.ndarray | None:
    src = np.float32([[0, 0], [card_w, 0], [card_w, card_h], [0, card_h]])
    k = tilt * rng.choice([-1, 1])
    pts = np.float32([[-card_w / 2 * (1 - k), -card_h / 2], [card_w / 2 * (1 - k), -card_h / 2],
                      [card_w / 2 * (1 + k), card_h / 2], [-card_w / 2 * (1 + k), card_h / 2]])
    rad = math.radians(angle)
    pts = pts @ np.float32([[math.cos(rad), math.sin(rad)], [-math.sin(rad), math.cos(rad)]])
    span = pts.max(axis=0) - pts.min(axis=0)
    if span[0] > FRAME_W - 20 or span[1] > FRAME_H - 20:
        return None
    center = np.float32([rng.uniform(span[0] / 2 + 10, FRAME_W - span[0] / 2 - 10),
                         rng.uniform(span[1] / 2 + 10, FRAME_H - span[1] / 2 - 10)])
    return cv2.getPerspectiveTransform(src, pts + center)


def make_mrz_frame(rng: random.Random, kind: str | None = None, *, camera: random.Random | None = None,
                   jitter_deg: float = 0.0, **fixed: float) -> MrzFrame:
    """One frame; ``fixed`` pins: char_px (MRZ cap height in the frame), angle, tilt, light, glare,
    blur, noise, quality. ``camera`` draws light, glare, blur, noise and JPEG apart from the card
    (same card seed, other camera seeds and ``jitter_deg``: a burst of frames of one card)."""
    kind = kind or rng.choices(list(DEFAULT_WEIGHTS), weights=list(DEFAULT_WEIGHTS.values()))[0]
    cam = camera or rng
    person = _person(kind, rng) if kind in MRZ_KINDS else None
    mrz = samples.td1_mrz(person, expiry=f"{rng.randint(2026, 2036)}-{rng.randint(1, 12):02d}-15",
                          card_serial=f"{rng.randint(0, 999_999_999):09d}") if person else None
    char_px = fixed.get("char_px", rng.uniform(14, 40))
    angle = fixed.get("angle", rng.uniform(0, 360)) + cam.uniform(-jitter_deg, jitter_deg)
    tilt = fixed.get("tilt", rng.uniform(0, 0.12))
    while True:
        card = _card(kind, mrz, rng, char_px / 2.45)
        matrix = _placement(card.shape[1], card.shape[0], angle, tilt, rng)
        if matrix is not None:
            break
        char_px *= 0.95
    frame = _background(rng)
    warped = cv2.warpPerspective(card, matrix, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full(card.shape[:2], 255, np.uint8), matrix, (FRAME_W, FRAME_H))
    frame[mask > 127] = warped[mask > 127]
    light = fixed.get("light", cam.uniform(0.35, 1.0))
    img = frame.astype(np.float32) * light
    glare = bool(fixed.get("glare", cam.random() < 0.4))
    if glare:
        gmask = np.zeros((FRAME_H, FRAME_W), np.float32)
        corners = cv2.perspectiveTransform(np.float32([[[0, 0]], [[card.shape[1], card.shape[0]]]]), matrix)
        center = tuple(int(v) for v in corners[cam.randrange(2)][0] * 0.4 + corners.mean(axis=0)[0] * 0.6)
        cv2.ellipse(gmask, center, (cam.randint(50, 180), cam.randint(25, 90)), cam.uniform(0, 180), 0, 360, 1.0, -1)
        img += cv2.GaussianBlur(gmask, (0, 0), 20)[:, :, None] * cam.uniform(40, 120)
    blur = fixed.get("blur", cam.uniform(0, 1.3))
    if blur > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    noise = fixed.get("noise", cam.uniform(1, 8))
    img += np.random.default_rng(cam.randrange(1 << 30)).normal(0, noise, img.shape).astype(np.float32)
    quality = int(fixed.get("quality", cam.randint(60, 95)))
    ok, jpeg = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    params = {"char_px": round(char_px, 1), "angle": round(angle, 1), "tilt": round(tilt, 3), "light": round(light, 2),
              "glare": glare, "blur": round(blur, 2), "noise": round(noise, 1), "jpeg_quality": quality}
    return MrzFrame(kind, jpeg.tobytes(), mrz, person, params)
