"""A second, independent generator of ID-card camera frames, for judging the decoder on frames it
was not tuned on. It shares no drawing code with :mod:`agent.idcard.synthetic_frames`: symbols
come from zxing-cpp's writer (not pdf417gen/segno), and cards, backgrounds and the camera are
modelled differently: printed card designs (gradients, guilloche, photo box, hologram patch),
textured counters, a thumb over the card, specular glare over the symbol, motion blur or
defocus, rolling-shutter skew and banding, and photocopies photographed ("printed look").

Same specification as the first corpus: 1920x1080, any rotation, tilt, module 2.0-4.5 px, blur,
noise, dim light, glare, JPEG 55-95. People are made up (:mod:`agent.idcard.samples`).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np
import zxingcpp

from agent.idcard import samples

W, H = 1920, 1080
KIND_WEIGHTS = {"co_cedula": 35, "ar_dni": 15, "ar_qr_2026": 8, "cl_qr": 15, "cl_2002": 7, "no_code": 10,
                "product_qr": 10}
_PALETTES = [((150, 215, 235), (90, 170, 210)), ((230, 205, 170), (190, 150, 110)), ((200, 230, 200), (140, 190, 150)),
             ((225, 200, 225), (180, 150, 190)), ((215, 215, 215), (160, 160, 165))]  # BGR light, dark


@dataclass(frozen=True)
class FieldFrame:
    kind: str
    jpeg: bytes
    payload: bytes | None
    symbology: str | None
    params: dict


def _content(kind: str, rng: random.Random) -> tuple[bytes, str]:
    country = {"co_cedula": "CO", "ar_dni": "AR", "ar_qr_2026": "AR"}.get(kind, "CL")
    person = samples.random_person(rng, country)
    if kind == "co_cedula":
        return samples.co_cedula_payload(person, seed=rng.randrange(1 << 20)), "PDF417"
    if kind == "ar_dni":
        return samples.ar_dni_payload(person, old_format=rng.random() < 0.25), "PDF417"
    if kind == "ar_qr_2026":
        return samples.ar_dni_qr_2026(person), "QRCode"
    if kind == "cl_qr":
        return samples.cl_qr_url(person, serial=str(rng.randrange(10 ** 8, 10 ** 9)), new_host=rng.random() < 0.5), "QRCode"
    if kind == "cl_2002":
        return samples.cl_2002_payload(person), "PDF417"
    return f"https://tienda.example.com/p/{rng.randrange(10 ** 9)}".encode(), "QRCode"


def _modules(payload: bytes, symbology: str, rng: random.Random) -> np.ndarray:
    """The symbol at one pixel per module, dark = 0, quiet zone included (zxing-cpp's writer)."""
    fmt = zxingcpp.BarcodeFormat.PDF417 if symbology == "PDF417" else zxingcpp.BarcodeFormat.QRCode
    options = {"ec_level": rng.choice(["3", "4", "5"])} if symbology == "PDF417" else {"ec_level": rng.choice("LMQ")}
    return np.array(zxingcpp.write_barcode_to_image(zxingcpp.create_barcode(payload, fmt, **options)))


def _design(rng: random.Random, w: int, h: int) -> np.ndarray:
    light, dark = (np.float32(c) for c in rng.choice(_PALETTES))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx / w * rng.uniform(0.3, 1) + yy / h * rng.uniform(0, 0.7))[:, :, None]
    card = light * (1 - 0.35 * t) + dark * 0.35 * t
    wave = np.sin(xx / rng.uniform(6, 14) + 3 * np.sin(yy / rng.uniform(20, 60)))  # guilloche
    card += (wave * rng.uniform(4, 12))[:, :, None]
    px, py, pw = rng.randint(int(0.05 * w), int(0.15 * w)), rng.randint(int(0.1 * h), int(0.3 * h)), int(0.2 * w)
    card[py:py + int(pw * 1.3), px:px + pw] *= rng.uniform(0.5, 0.8)  # photo box
    card = np.clip(card, 0, 255).astype(np.uint8)
    for row in range(rng.randint(3, 7)):
        cv2.putText(card, "".join(rng.choice("ABCDEFGHIJKLMNOPRSTUV 0123456789") for _ in range(rng.randint(8, 22))),
                    (int(0.4 * w), int((0.12 + 0.09 * row) * h)), rng.choice([cv2.FONT_HERSHEY_DUPLEX,
                                                                             cv2.FONT_HERSHEY_COMPLEX]),
                    w / 2200, (50, 40, 40), 1, cv2.LINE_AA)
    return card.astype(np.float32)


def _hologram(card: np.ndarray, rng: random.Random) -> None:
    h, w = card.shape[:2]
    mask = np.zeros((h, w), np.float32)
    cv2.circle(mask, (rng.randrange(w), rng.randrange(h)), rng.randint(h // 8, h // 4), 1.0, -1)
    hue = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    rainbow = np.stack([np.sin(hue * 12 + k) for k in (0, 2, 4)], axis=2) * 25
    card += cv2.GaussianBlur(mask, (0, 0), 6)[:, :, None] * rainbow


def _card(kind: str, rng: random.Random, module: float
          ) -> tuple[np.ndarray, bytes | None, str | None, tuple[float, float] | None]:
    payload = symbology = None
    sym_center = None
    if kind != "no_code":
        payload, symbology = _content(kind, rng)
        sym = _modules(payload, symbology, rng)
        sym = cv2.resize(sym, None, fx=module, fy=module, interpolation=cv2.INTER_NEAREST)
        card_w = int(max(sym.shape[1] / (0.9 if symbology == "PDF417" else 0.35), 560))
        card_w = max(card_w, int((sym.shape[0] + 8) / 0.9 * 85.6 / 54))  # zxing's PDF417 is tall
    else:
        sym, card_w = None, rng.randint(600, 1100)
    card_h = int(card_w * 54 / 85.6)
    card = _design(rng, card_w, card_h)
    if sym is not None:
        sh, sw = min(sym.shape[0], card_h - 4), min(sym.shape[1], card_w - 4)
        x, y = rng.randint(2, card_w - sw - 2), rng.randint(max(2, card_h // 2 - sh), card_h - sh - 2)
        ink = sym[:sh, :sw].astype(np.float32) / 255.0  # print: ink darkens the design, does not replace it
        paper = card[y:y + sh, x:x + sw]
        card[y:y + sh, x:x + sw] = paper * (0.12 + 0.88 * ink[:, :, None]) + 25 * ink[:, :, None]
        sym_center = (x + sw / 2, y + sh / 2)
    if rng.random() < 0.5:
        _hologram(card, rng)
    return np.clip(card, 0, 255), payload, symbology, sym_center


def _counter(rng: random.Random) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.float32([rng.randint(20, 140) for _ in range(3)])
    style = rng.choice(["wood", "mat", "plain"])
    if style == "wood":
        grain = np.sin(xx / rng.uniform(15, 40) + 4 * np.sin(yy / rng.uniform(80, 200))) * 18
    elif style == "mat":
        grain = ((xx // 40 + yy // 40) % 2) * 25 - 12
    else:
        grain = np.zeros_like(xx)
    return base + grain[:, :, None]


def _thumb(frame: np.ndarray, corners: np.ndarray, avoid: np.ndarray | None, rng: random.Random) -> None:
    """A thumb on the card's edge, on the side away from the symbol: the attendant holds the card
    by its margin (a thumb over the code is a re-take no decoder can avoid, not a decoder miss)."""
    mids = [(corners[k] + corners[(k + 1) % 4]) / 2 for k in range(4)]
    edge = max(range(4), key=lambda k: np.linalg.norm(mids[k] - avoid)) if avoid is not None else rng.randrange(4)
    p = corners[edge] + (corners[(edge + 1) % 4] - corners[edge]) * rng.uniform(0.3, 0.7)
    skin = np.float32([rng.randint(60, 120), rng.randint(100, 160), rng.randint(150, 220)])
    mask = np.zeros((H, W), np.float32)
    cv2.ellipse(mask, (int(p[0]), int(p[1])), (rng.randint(30, 55), rng.randint(60, 100)), rng.uniform(0, 180), 0,
                360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 4)[:, :, None]
    frame[:] = frame * (1 - mask) + skin * mask


def _camera(frame: np.ndarray, sym_center: np.ndarray | None, rng: random.Random, params: dict) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    gain = rng.uniform(0.3, 1.0)
    params["gain"] = round(gain, 2)
    vignette = 1 - 0.35 * (((xx - W / 2) / W) ** 2 + ((yy - H / 2) / H) ** 2) * 2
    frame = frame * (gain * vignette)[:, :, None] * np.float32([rng.uniform(0.85, 1.1) for _ in range(3)])
    if sym_center is not None and rng.random() < 0.45:  # specular glare over the symbol itself
        spot = np.zeros((H, W), np.float32)
        offset = np.float32([rng.uniform(-60, 60), rng.uniform(-40, 40)])
        c = sym_center + offset
        cv2.ellipse(spot, (int(c[0]), int(c[1])), (rng.randint(30, 120), rng.randint(15, 60)), rng.uniform(0, 180),
                    0, 360, 1.0, -1)
        frame += cv2.GaussianBlur(spot, (0, 0), rng.uniform(6, 18))[:, :, None] * rng.uniform(60, 200)
        params["glare_on_symbol"] = True
    if rng.random() < 0.3:  # rolling shutter while moving: rows shifted progressively, exposure bands
        shear = rng.uniform(-0.04, 0.04)
        frame = cv2.warpAffine(frame, np.float32([[1, shear, -shear * H / 2], [0, 1, 0]]), (W, H),
                               borderMode=cv2.BORDER_REFLECT)
        frame *= (1 + 0.06 * np.sin(yy / rng.uniform(8, 30)))[:, :, None]
        params["rolling"] = round(shear, 3)
    blur = rng.choice(["none", "gauss", "motion", "defocus"])
    if blur == "gauss":
        frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.4, 1.3))
    elif blur == "motion":
        length = rng.randint(3, 7)
        params["motion_px"] = length
        kernel = np.zeros((length, length), np.float32)
        angle = rng.uniform(0, math.pi)
        for t in np.linspace(-0.5, 0.5, length * 3):
            kernel[int(round((length - 1) / 2 + t * (length - 1) * math.sin(angle))),
                   int(round((length - 1) / 2 + t * (length - 1) * math.cos(angle)))] = 1
        frame = cv2.filter2D(frame, -1, kernel / kernel.sum())
    elif blur == "defocus":
        radius = rng.randint(1, 2)
        disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)).astype(np.float32)
        frame = cv2.filter2D(frame, -1, disk / disk.sum())
    params["blur"] = blur
    shot = np.random.default_rng(rng.randrange(1 << 30))
    frame = frame + shot.normal(0, 1, frame.shape).astype(np.float32) * (np.sqrt(np.clip(frame, 0, 255)) * 0.6 + 2)
    return frame


def make_field_frame(rng: random.Random, kind: str | None = None, *, camera: random.Random | None = None,
                     jitter_deg: float = 0.0) -> FieldFrame:
    """One frame. ``camera`` draws the camera's part (light, glare, blur, shutter, noise, JPEG)
    apart from the card's: the same card seed with other camera seeds and a few degrees of
    ``jitter_deg`` is the same card held under the camera for a burst of frames."""
    kind = kind or rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()))[0]
    camera = camera or rng
    rng_state = rng.getstate()
    module = rng.uniform(2.0, 4.5)
    for _ in range(30):  # the frame's module size is the spec: shrink the card only as far as 2 px
        rng.setstate(rng_state)
        card, payload, symbology, sym_xy = _card(kind, rng, module)
        angle = rng.uniform(0, 360) + camera.uniform(-jitter_deg, jitter_deg)
        ch, cw = card.shape[:2]
        rad = math.radians(angle)
        fit = min(0.95 * W / (abs(math.cos(rad)) * cw + abs(math.sin(rad)) * ch),
                  0.95 * H / (abs(math.sin(rad)) * cw + abs(math.cos(rad)) * ch))
        if fit >= 1 or module * fit >= 2.0:
            break
        rng_state = (rng.random(), rng.getstate())[1]  # another angle next time
        module = max(2.0, module * 0.93)
    printed = rng.random() < 0.15
    if printed:  # a photocopy photographed: less contrast, grey, halftone moire
        grey = card.mean(axis=2, keepdims=True)
        yy, xx = np.mgrid[0:card.shape[0], 0:card.shape[1]].astype(np.float32)
        card = (grey * 0.7 + 60) * (1 + 0.05 * np.sin(xx * 1.3 + yy * 0.7))[:, :, None] * np.ones(3, np.float32)
    tilt = rng.uniform(0, 0.15)
    scale = min(1.0, fit) / (1 + tilt)
    half = np.float32([[-cw, -ch], [cw, -ch], [cw, ch], [-cw, ch]]) / 2 * scale
    half[:2] *= 1 - tilt * rng.choice([-1, 1]) if rng.random() < 0.5 else 1
    half[[0, 3], 1] *= 1 - tilt * rng.uniform(-1, 1)
    rad = math.radians(angle)
    half = half @ np.float32([[math.cos(rad), math.sin(rad)], [-math.sin(rad), math.cos(rad)]])
    span = half.max(axis=0) - half.min(axis=0)
    center = np.float32([rng.uniform(span[0] / 2, max(span[0] / 2, W - span[0] / 2)),
                         rng.uniform(span[1] / 2, max(span[1] / 2, H - span[1] / 2))])
    corners = half + center
    matrix = cv2.getPerspectiveTransform(np.float32([[0, 0], [cw, 0], [cw, ch], [0, ch]]), corners)
    frame = _counter(rng)
    warped = cv2.warpPerspective(card.astype(np.float32), matrix, (W, H), flags=cv2.INTER_AREA)
    inside = cv2.warpPerspective(np.ones((ch, cw), np.float32), matrix, (W, H))[:, :, None]
    frame = frame * (1 - inside) + warped * inside
    sym_center = cv2.perspectiveTransform(np.float32([[sym_xy]]), matrix)[0, 0] if sym_xy else None
    if rng.random() < 0.5:
        _thumb(frame, corners, sym_center, rng)
    params = {"angle": round(angle, 1), "tilt": round(tilt, 3), "module": round(module * scale, 2), "printed": printed}
    frame = _camera(frame, sym_center, camera, params)
    quality = camera.randint(55, 95)
    ok, jpeg = cv2.imencode(".jpg", np.clip(frame, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    params["jpeg_quality"] = quality
    is_id = kind not in ("no_code", "product_qr")
    return FieldFrame(kind, jpeg.tobytes(), payload if is_id else None, symbology if is_id else None, params)
