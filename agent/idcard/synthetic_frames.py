"""Synthetic camera frames of ID-card backs, for tests and the benchmark corpus.

A frame is 1920x1080: a cluttered desk, a card carrying one of the documents' barcodes (made up
people from :mod:`agent.idcard.samples`), held at any in-plane angle with perspective tilt,
module width 2.0-4.5 px, blur sigma up to 1.3, sensor noise, dim light, glare, JPEG quality
60-95. Some frames carry no ID code (an empty card, or a product EAN-13) to count false reads.

Test-fixture code: it needs ``pdf417gen`` and ``segno`` (dev dependencies), imported lazily.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np

from agent.idcard import samples

FRAME_W, FRAME_H = 1920, 1080
CARD_ASPECT = 85.6 / 54.0
KINDS = ("co_cedula", "ar_dni", "cl_qr", "cl_2002", "no_code", "ean13")
# Mix used by the benchmark: mostly Colombian cedulas (the seed-003 flow), a share of no-code frames.
DEFAULT_WEIGHTS = {"co_cedula": 40, "ar_dni": 20, "cl_qr": 15, "cl_2002": 5, "no_code": 10, "ean13": 10}


@dataclass(frozen=True)
class SyntheticFrame:
    kind: str
    jpeg: bytes
    payload: bytes | None  # what the barcode holds; None when the frame has no ID code
    symbology: str | None
    person: samples.SyntheticPerson | None
    params: dict


def _payload(kind: str, rng: random.Random) -> tuple[bytes, str, samples.SyntheticPerson | None]:
    if kind == "co_cedula":
        person = samples.random_person(rng, "CO")
        return samples.co_cedula_payload(person, seed=rng.randrange(1 << 30)), "PDF417", person
    if kind == "ar_dni":
        person = samples.random_person(rng, "AR")
        return samples.ar_dni_payload(person, old_format=rng.random() < 0.2), "PDF417", person
    if kind == "cl_qr":
        person = samples.random_person(rng, "CL")
        serial = "".join(rng.choice("0123456789") for _ in range(9)) if rng.random() < 0.5 else \
            "A" + "".join(rng.choice("0123456789") for _ in range(8))
        return samples.cl_qr_url(person, serial=serial, new_host=rng.random() < 0.5), "QRCode", person
    if kind == "cl_2002":
        person = samples.random_person(rng, "CL")
        return samples.cl_2002_payload(person), "PDF417", person
    if kind == "ean13":
        digits = "770" + "".join(rng.choice("0123456789") for _ in range(9))
        from stdnum import ean
        return (digits + ean.calc_check_digit(digits)).encode(), "EAN13", None
    raise ValueError(kind)


def _symbol_image(payload: bytes, symbology: str, rng: random.Random) -> np.ndarray:
    """Black-on-white symbol at 1 px per module (PDF417 rows 3 modules high), with quiet zone."""
    if symbology == "PDF417":
        import pdf417gen
        columns = 12 if len(payload) > 300 else rng.choice([4, 5, 6])
        codes = pdf417gen.encode(payload, columns=columns, security_level=5 if len(payload) > 300 else 4)
        return np.array(pdf417gen.render_image(codes, scale=1, ratio=3, padding=2).convert("L"))
    if symbology == "QRCode":
        import segno
        qr = segno.make_qr(payload, error="m")
        return np.pad((1 - np.array(qr.matrix, dtype=np.uint8)) * 255, 4, constant_values=255).astype(np.uint8)
    import zxingcpp
    code = zxingcpp.create_barcode(payload.decode(), zxingcpp.BarcodeFormat.EAN13)
    return np.array(zxingcpp.write_barcode_to_image(code))


def _scaled(symbol: np.ndarray, module: float) -> np.ndarray:
    h, w = symbol.shape
    big = cv2.resize(symbol, (w * 8, h * 8), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(big, (max(1, round(w * module)), max(1, round(h * module))), interpolation=cv2.INTER_AREA)


def _card(kind: str, symbol: np.ndarray | None, rng: random.Random, card_w: int) -> np.ndarray:
    card_h = round(card_w / CARD_ASPECT)
    tint = (rng.randint(190, 235), rng.randint(215, 245), rng.randint(225, 250))  # pale yellow/white, BGR
    card = np.full((card_h, card_w, 3), tint, np.uint8)
    # Printed background pattern and text lines, as on real cards (they confuse localisation).
    for _ in range(rng.randint(4, 10)):
        y = rng.randrange(card_h)
        cv2.line(card, (0, y), (card_w, y + rng.randint(-40, 40)), [c - rng.randint(15, 40) for c in tint], 1)
    for _ in range(rng.randint(2, 6)):
        org = (rng.randrange(card_w // 2), rng.randrange(20, card_h))
        cv2.putText(card, "REPUBLICA" if rng.random() < 0.5 else "IDENTIFICACION", org,
                    cv2.FONT_HERSHEY_SIMPLEX, card_w / 1400, (60, 60, 60), max(1, card_w // 600))
    if symbol is not None:
        sh, sw = symbol.shape
        x = rng.randint(0, max(0, card_w - sw)) if sw < card_w else 0
        y = rng.randint(max(0, min(card_h // 3, card_h - sh)), max(0, card_h - sh))
        region = card[y:y + sh, x:x + sw]
        sym = symbol[: region.shape[0], : region.shape[1]]
        card[y:y + sym.shape[0], x:x + sym.shape[1]] = np.repeat(sym[:, :, None], 3, axis=2)
    return card


def _background(rng: random.Random) -> np.ndarray:
    base = np.array([rng.randint(40, 160) for _ in range(3)], np.float32)
    gy, gx = np.mgrid[0:FRAME_H:8, 0:FRAME_W:8].astype(np.float32)
    grad = (gx / FRAME_W * rng.uniform(-40, 40) + gy / FRAME_H * rng.uniform(-40, 40))[:, :, None]
    small = np.clip(base + grad, 0, 255).astype(np.uint8)
    frame = cv2.resize(small, (FRAME_W, FRAME_H), interpolation=cv2.INTER_LINEAR)
    for _ in range(rng.randint(3, 8)):  # clutter: receipts, keyboard edges
        p1 = (rng.randrange(FRAME_W), rng.randrange(FRAME_H))
        p2 = (p1[0] + rng.randint(-400, 400), p1[1] + rng.randint(-300, 300))
        cv2.rectangle(frame, p1, p2, [rng.randint(0, 255) for _ in range(3)], rng.choice([-1, 2, 5]))
    return frame


def _place(card: np.ndarray, rng: random.Random, angle: float, tilt: float) -> tuple[np.ndarray, np.ndarray]:
    """Perspective matrix putting the card in the frame rotated by ``angle`` with ``tilt`` foreshortening."""
    h, w = card.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    # Tilt: shrink one edge (card tipped towards/away from the camera).
    k = tilt * rng.choice([-1, 1])
    pts = np.float32([[-w / 2 * (1 - k), -h / 2], [w / 2 * (1 - k), -h / 2], [w / 2 * (1 + k), h / 2],
                      [-w / 2 * (1 + k), h / 2]])
    if rng.random() < 0.5:  # tip around the other axis instead
        pts = np.float32([[-w / 2, -h / 2 * (1 - k)], [w / 2, -h / 2 * (1 + k)], [w / 2, h / 2 * (1 + k)],
                          [-w / 2, h / 2 * (1 - k)]])
    rad = math.radians(angle)
    rot = np.float32([[math.cos(rad), -math.sin(rad)], [math.sin(rad), math.cos(rad)]])
    pts = pts @ rot.T
    span = pts.max(axis=0) - pts.min(axis=0)
    cx = rng.uniform(span[0] / 2 + 10, FRAME_W - span[0] / 2 - 10) if span[0] + 20 < FRAME_W else FRAME_W / 2
    cy = rng.uniform(span[1] / 2 + 10, FRAME_H - span[1] / 2 - 10) if span[1] + 20 < FRAME_H else FRAME_H / 2
    dst = pts + np.float32([cx, cy])
    return cv2.getPerspectiveTransform(src, dst), dst


def _fits(card_w: int, angle: float, tilt: float) -> bool:
    card_h = card_w / CARD_ASPECT
    rad = math.radians(angle)
    bw = (abs(math.cos(rad)) * card_w + abs(math.sin(rad)) * card_h) * (1 + tilt)
    bh = (abs(math.sin(rad)) * card_w + abs(math.cos(rad)) * card_h) * (1 + tilt)
    return bw < FRAME_W - 20 and bh < FRAME_H - 20


def make_frame(rng: random.Random, kind: str | None = None, **fixed: float) -> SyntheticFrame:
    """One synthetic camera frame; ``kind`` from :data:`KINDS` or drawn from :data:`DEFAULT_WEIGHTS`.

    ``fixed`` pins distortions for tests: module, angle, tilt, light, glare (0/1), blur, noise, quality.
    """
    kind = kind or rng.choices(list(DEFAULT_WEIGHTS), weights=list(DEFAULT_WEIGHTS.values()))[0]
    payload = symbology = person = None
    symbol = None
    module = fixed.get("module", rng.uniform(2.0, 4.5))
    if kind != "no_code":
        payload, symbology, person = _payload(kind, rng)
        symbol = _symbol_image(payload, symbology, rng)
    angle = fixed.get("angle", rng.uniform(0, 360))
    tilt = fixed.get("tilt", rng.uniform(0, 0.12))
    for _ in range(40):
        sym = _scaled(symbol, module) if symbol is not None else None
        # PDF417 on a cedula spans most of the card's width; a QR sits in a corner.
        width = sym.shape[1] / 0.85 if (sym is not None and symbology == "PDF417") else rng.uniform(700, 1100)
        width = max(width, (sym.shape[1] * 2.5) if sym is not None and symbology != "PDF417" else 0, 500)
        card_w = round(width)
        if _fits(card_w, angle, tilt):
            break
        angle = rng.uniform(0, 360) if rng.random() < 0.5 else angle * 0.7
        module = max(2.0, module * 0.97)
    card = _card(kind, sym, rng, card_w)
    matrix, corners = _place(card, rng, angle, tilt)
    frame = _background(rng)
    warped = cv2.warpPerspective(card, matrix, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full(card.shape[:2], 255, np.uint8), matrix, (FRAME_W, FRAME_H))
    frame[mask > 127] = warped[mask > 127]
    light = fixed.get("light", rng.uniform(0.35, 1.0))  # dim shop lighting
    img = frame.astype(np.float32) * light
    glare = bool(fixed.get("glare", rng.random() < 0.5))
    if glare:  # specular highlight on the laminate: a soft bright ellipse
        gmask = np.zeros((FRAME_H, FRAME_W), np.float32)
        if rng.random() < 0.7:  # usually on the card itself, where it hurts
            w = rng.random()
            center = tuple(int(v) for v in corners[rng.randrange(4)] * w + corners.mean(axis=0) * (1 - w))
        else:
            center = (rng.randrange(FRAME_W), rng.randrange(FRAME_H))
        axes = (rng.randint(60, 220), rng.randint(30, 120))
        cv2.ellipse(gmask, center, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        gmask = cv2.GaussianBlur(gmask, (0, 0), 25)
        img += gmask[:, :, None] * rng.uniform(60, 160)
    blur = fixed.get("blur", rng.uniform(0, 1.3))
    if blur > 0.3:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    noise = fixed.get("noise", rng.uniform(1, 8))
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    img += nrng.normal(0, noise, img.shape).astype(np.float32)
    quality = int(fixed.get("quality", rng.randint(60, 95)))
    ok, jpeg = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    has_id = kind not in ("no_code", "ean13")
    params = {"module": round(module, 2), "angle": round(angle, 1), "tilt": round(tilt, 3), "blur": round(blur, 2),
              "noise": round(noise, 1), "light": round(light, 2), "glare": glare, "jpeg_quality": quality}
    return SyntheticFrame(kind, jpeg.tobytes(), payload if has_id else None, symbology if has_id else None,
                          person, params)
