"""A third ID-card corpus, drawn only from the words of the specification (issue 14): 1920x1080
camera frames, any rotation, a tilt, module 2.0-4.5 px, blur up to sigma 1.3, noise, dim light,
glare, JPEG 60-95. Nothing harsher, nothing tuned: it stands in for the independent corpus that
checks the pipeline, which was made to that specification by someone else.

It shares no drawing code with corpus A (:mod:`agent.idcard.synthetic_frames`) or B
(:mod:`agent.idcard.synthetic_field_frames`): QR codes come from the ``qrcode`` package (A uses
segno, B zxing-cpp's writer), PDF417 from pdf417gen with a random column count and row height
(A: fixed ratio 3), and the card, counter, light and lens are modelled here. Only the payloads
(made-up people, :mod:`agent.idcard.samples`) are shared, since every corpus needs the real
layouts. ``python -m bench.idcard_spec_frames N [SEED [BUDGET_MS]]`` prints how raw zxing-cpp and the
pipeline read N frames; ``bench idcard --frames-c N`` runs it beside the other corpora.
"""
from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from agent.idcard import samples

W, H = 1920, 1080
# Kinds in the field mix; a tenth of frames carry no ID code (false-read check).
KINDS = {"co_cedula": 30, "ar_dni": 15, "ar_qr_2026": 10, "cl_qr": 20, "cl_2002": 10, "none": 10, "shop_qr": 5}


@dataclass(frozen=True)
class SpecFrame:
    kind: str
    jpeg: bytes
    payload: bytes | None  # None: no ID code in the frame
    symbology: str | None
    params: dict


def _payload(kind: str, rng: random.Random) -> tuple[bytes, str]:
    country = {"co_cedula": "CO", "ar_dni": "AR", "ar_qr_2026": "AR"}.get(kind, "CL")
    person = samples.random_person(rng, country)
    if kind == "co_cedula":
        return samples.co_cedula_payload(person, seed=rng.randrange(1 << 20)), "PDF417"
    if kind == "ar_dni":
        return samples.ar_dni_payload(person, old_format=rng.random() < 0.3), "PDF417"
    if kind == "ar_qr_2026":
        return samples.ar_dni_qr_2026(person), "QRCode"
    if kind == "cl_qr":
        return samples.cl_qr_url(person, serial=str(rng.randrange(10 ** 8, 10 ** 9)),
                                 new_host=rng.random() < 0.5), "QRCode"
    if kind == "cl_2002":
        return samples.cl_2002_payload(person), "PDF417"
    return f"https://promo.example.org/c/{rng.randrange(10 ** 10)}".encode(), "QRCode"


def _symbol(payload: bytes, symbology: str, rng: random.Random) -> tuple[np.ndarray, float]:
    """(module image at 1 px per module wide, dark=0, light=255, quiet zone included; the height
    in pixels of one module row relative to its width)."""
    if symbology == "PDF417":
        import pdf417gen

        columns = rng.randint(8, 16) if len(payload) > 200 else rng.randint(3, 8)
        level = rng.choice([3, 4, 5])
        while True:
            try:
                codes = pdf417gen.encode(payload, columns=columns, security_level=level)
                break
            except ValueError:  # more than 90 rows: a wider symbol, as a card printer would choose
                columns += 2
        row_ratio = rng.uniform(2.5, 4.0)
        image = np.array(pdf417gen.render_image(codes, scale=1, ratio=1, padding=2).convert("L"))
        return image, row_ratio
    import qrcode

    qr = qrcode.QRCode(error_correction=rng.choice([qrcode.constants.ERROR_CORRECT_L, qrcode.constants.ERROR_CORRECT_M,
                                                    qrcode.constants.ERROR_CORRECT_Q]), box_size=1, border=4)
    qr.add_data(payload)
    qr.make(fit=True)
    return np.array(qr.make_image().convert("L")), 1.0


def _card(symbol: np.ndarray, row_ratio: float, module_px: float, rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
    """A plain printed card (BGR) with the symbol on it, at ``module_px`` pixels per module, and
    the symbol's four corners on the card."""
    sym_w = symbol.shape[1] * module_px
    sym_h = symbol.shape[0] * module_px * row_ratio
    card_w = int(max(sym_w * rng.uniform(1.1, 1.6), sym_h * 1.2))
    card_h = int(max(card_w / 1.586, sym_h * rng.uniform(1.15, 1.6)))
    base = np.array([rng.randint(200, 250), rng.randint(200, 250), rng.randint(195, 245)], np.uint8)
    card = np.empty((card_h, card_w, 3), np.uint8)
    card[:] = base
    # Printed text lines and a photo box, so the symbol is not alone on the card.
    for _ in range(rng.randint(3, 8)):
        y = rng.randint(10, card_h - 10)
        x = rng.randint(5, max(6, card_w // 2))
        cv2.putText(card, "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ0123456789 ") for _ in range(rng.randint(6, 18))),
                    (x, y), cv2.FONT_HERSHEY_SIMPLEX, rng.uniform(0.4, 1.0) * module_px / 3, (60, 60, 70), 1,
                    cv2.LINE_AA)
    if rng.random() < 0.6:
        px, py = rng.randint(0, card_w // 3), rng.randint(0, card_h // 3)
        cv2.rectangle(card, (px, py), (px + card_w // 5, py + card_h // 3), (150, 140, 135), -1)
    scaled = cv2.resize(symbol, (max(1, int(round(sym_w))), max(1, int(round(sym_h)))), interpolation=cv2.INTER_AREA)
    ox = rng.randint(0, max(0, card_w - scaled.shape[1]))
    oy = rng.randint(0, max(0, card_h - scaled.shape[0]))
    ink = scaled[..., None].astype(np.float32) / 255.0
    # The symbol is printed on a clear patch of the card (text and photo are laid out around it).
    region = np.broadcast_to(base.astype(np.float32), (*scaled.shape, 3))
    card[oy:oy + scaled.shape[0], ox:ox + scaled.shape[1]] = (region * ink + 25 * (1 - ink)).astype(np.uint8)
    corners = np.float32([[ox, oy], [ox + scaled.shape[1], oy], [ox + scaled.shape[1], oy + scaled.shape[0]],
                          [ox, oy + scaled.shape[0]]])
    return card, corners


def _counter(rng: random.Random) -> np.ndarray:
    """A counter top: a colour, a broad shading and fine grain."""
    colour = np.array([rng.randint(30, 200) for _ in range(3)], np.float32)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    shade = 1 + 0.25 * np.sin(xx / rng.uniform(200, 900) + rng.uniform(0, 6)) * np.cos(yy / rng.uniform(200, 900))
    grain = rng.uniform(3, 12)
    noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, grain, (H, W, 1)).astype(np.float32)
    return np.clip(colour * shade[..., None] + noise, 0, 255)


def _place(card: np.ndarray, sym_corners: np.ndarray, frame: np.ndarray, angle: float, tilt: float,
           tilt_across: bool, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The card warped onto the counter (rotation ``angle``, perspective ``tilt`` along or
    ``tilt_across`` its width, the card's centre moved by ``offset``), and the symbol's corners in
    the frame."""
    matrix = cv2.getPerspectiveTransform(_card_quad(card.shape, tilt, tilt_across)[0],
                                         (_rotated(card.shape, angle, tilt, tilt_across) + offset).astype(np.float32))
    ch, cw = card.shape[:2]
    warped = cv2.warpPerspective(card, matrix, (W, H), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full((ch, cw), 255, np.uint8), matrix, (W, H))
    frame = np.where(mask[..., None] > 127, warped.astype(np.float32), frame)
    return frame, cv2.perspectiveTransform(sym_corners[None], matrix)[0]


def _card_quad(shape: tuple, tilt: float, tilt_across: bool) -> tuple[np.ndarray, np.ndarray]:
    """The card's corners, and the same tilted (perspective: the far edge shorter)."""
    ch, cw = shape[:2]
    src = np.float32([[0, 0], [cw, 0], [cw, ch], [0, ch]])
    shrink = np.float32([[tilt * cw / 2, 0], [-tilt * cw / 2, 0], [0, 0], [0, 0]])
    if tilt_across:
        shrink = np.float32([[0, tilt * ch / 2], [0, 0], [0, 0], [0, -tilt * ch / 2]])
    return src, src + shrink


def _rotated(shape: tuple, angle: float, tilt: float, tilt_across: bool) -> np.ndarray:
    """The tilted card's corners rotated by ``angle`` about its centre (centre at the origin)."""
    tilted = _card_quad(shape, tilt, tilt_across)[1]
    rot = np.float32([[math.cos(math.radians(angle)), -math.sin(math.radians(angle))],
                      [math.sin(math.radians(angle)), math.cos(math.radians(angle))]])
    return (tilted - tilted.mean(axis=0)) @ rot.T


def _fits(placed: np.ndarray) -> bool:
    span = placed.max(axis=0) - placed.min(axis=0)
    return not (span[0] > W - 20 or span[1] > H - 20)


def _camera(frame: np.ndarray, sym_in_frame: np.ndarray, rng: random.Random, params: dict,
            gain: float | None = None) -> bytes:
    """Light, glare, lens blur, sensor noise and JPEG: the JPEG bytes (``params`` gets the draws).
    ``gain`` given (a burst: the room's light, varied a little per frame) replaces its draw."""
    # Light: a gain (dim rooms) with a gradient across the frame.
    drawn = rng.uniform(0.35, 1.0)
    gain = drawn if gain is None else gain
    gx = np.linspace(1 - rng.uniform(0, 0.25), 1, W, dtype=np.float32)[None, :, None]
    frame = frame * gain * (gx if rng.random() < 0.5 else gx[:, ::-1])
    # Glare: a specular blob in 60% of frames, over the symbol in a third of those.
    glare = rng.random() < 0.6
    if glare:
        if rng.random() < 0.33:
            cx, cy = sym_in_frame[rng.randrange(4)] * 0.3 + sym_in_frame.mean(axis=0) * 0.7
        else:
            cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        radius = rng.uniform(25, 140)
        yy, xx = np.ogrid[0:H, 0:W]
        blob = np.exp(-(((xx - cx) ** 2) / (2 * radius ** 2) + ((yy - cy) ** 2) / (2 * (radius * rng.uniform(0.4, 1)) ** 2)))
        frame = frame + rng.uniform(80, 255) * blob[..., None]
        params["glare"] = [round(float(cx)), round(float(cy)), round(radius)]
    sigma = rng.uniform(0, 1.3)
    if sigma > 0.3:
        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    noise_sd = rng.uniform(1, 8) / max(gain, 0.5)  # a dim frame is amplified, so is its sensor noise
    frame = frame + np.random.default_rng(rng.randrange(1 << 30)).normal(0, noise_sd, frame.shape)
    quality = rng.randint(60, 95)
    image = np.clip(frame, 0, 255).astype(np.uint8)
    if glare:
        params["glare_clip"] = saturated_share(image, sym_in_frame)
    ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    params.update(gain=round(gain, 2), blur_sigma=round(sigma, 2), noise_sd=round(noise_sd, 1), jpeg=quality)
    return jpeg.tobytes()


def saturated_share(image: np.ndarray, quad: np.ndarray, level: int = 250) -> float:
    """Share of the symbol's pixels (inside ``quad``) that the glare drove to white in every
    channel: what is there is lost to any reader, and a QR code's error correction restores at
    most 30% of it (level H; ID cards print L-Q). Printed with each miss, it tells a glare frame
    no reader could read from one the localiser or the decoder missed. 0.0 without a symbol."""
    x0, y0 = np.floor(quad.min(axis=0)).astype(int).clip(0)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 1
    patch = image[y0:y1, x0:x1]
    inside = np.zeros(patch.shape[:2], np.uint8)
    cv2.fillConvexPoly(inside, np.round(quad - np.float32([x0, y0])).astype(np.int32), 1)
    count = int(inside.sum())
    if count < 16:
        return 0.0
    white = (patch.min(axis=2) if patch.ndim == 3 else patch) >= level
    return round(float(white[inside > 0].mean()), 2)


def make_spec_frame(rng: random.Random, kind: str | None = None) -> SpecFrame:
    kind = kind or rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    module_px = rng.uniform(2.0, 4.5)
    params: dict = {"module_px": round(module_px, 2)}
    frame = _counter(rng)
    payload: bytes | None = None
    symbology: str | None = None
    if kind != "none":
        payload, symbology = _payload(kind, rng)
        symbol, row_ratio = _symbol(payload, symbology, rng)
        card, sym_corners = _card(symbol, row_ratio, module_px, rng)
        # Any rotation, a tilt (perspective: the far edge shorter), placed wholly in the frame.
        angle = rng.uniform(0, 360)
        tilt = rng.uniform(0, 0.18)
        tilt_across = rng.random() < 0.5
        placed = _rotated(card.shape, angle, tilt, tilt_across)
        if not _fits(placed):  # too big for the frame: a smaller module instead
            return make_spec_frame(rng, kind)
        offset = np.float32([rng.uniform(10 - placed[:, 0].min(), W - 10 - placed[:, 0].max()),
                             rng.uniform(10 - placed[:, 1].min(), H - 10 - placed[:, 1].max())])
        frame, sym_in_frame = _place(card, sym_corners, frame, angle, tilt, tilt_across, offset)
        params.update(angle=round(angle, 1), tilt=round(tilt, 3))
    else:
        sym_in_frame = np.float32([[W / 2, H / 2]] * 4)
    jpeg = _camera(frame, sym_in_frame, rng, params)
    is_id = kind not in ("none", "shop_qr")
    return SpecFrame(kind, jpeg, payload if is_id else None, symbology if is_id else None, params)


ID_KINDS = {k: v for k, v in KINDS.items() if k not in ("none", "shop_qr")}


def spec_burst(card_seed: int, max_shift_px: float = 15.0,
               max_turn_deg: float = 3.0) -> Callable[[int], SpecFrame]:
    """One card held in front of the camera (issue 14's burst: ~1 s at 15-30 fps). The person, symbol, card, counter, module size and the room's light are drawn once
    from ``card_seed``; each frame is a small hand movement from the first pose (a few degrees of
    rotation, a tilt change, a shift of some pixels) and new draws of the light's gradient and
    level (+-15%), glare, blur, noise and JPEG quality, all within the same ranges as
    :func:`make_spec_frame`. Returns ``frame(index)``: frame ``index`` of the burst (drawn on
    demand: a reader that stops at its first read does not pay for the rest)."""
    rng = random.Random(card_seed)
    kind = rng.choices(list(ID_KINDS), weights=list(ID_KINDS.values()))[0]
    while True:
        module_px = rng.uniform(2.0, 4.5)
        counter = _counter(rng)
        payload, symbology = _payload(kind, rng)
        symbol, row_ratio = _symbol(payload, symbology, rng)
        card, sym_corners = _card(symbol, row_ratio, module_px, rng)
        angle, tilt, tilt_across = rng.uniform(0, 360), rng.uniform(0, 0.18), rng.random() < 0.5
        if _fits(_rotated(card.shape, angle, min(0.18, tilt + 0.03), tilt_across) * 1.03):  # room for the hand
            break
    room_gain = rng.uniform(0.35, 1.0)
    where = (rng.random(), rng.random())  # the card's place in the frame, as a share of the free room

    def frame_at(index: int) -> SpecFrame:
        hand = random.Random(card_seed * 1000 + index)
        a = angle + hand.uniform(-max_turn_deg, max_turn_deg)
        t = min(0.18, max(0.0, tilt + hand.uniform(-0.03, 0.03)))
        placed = _rotated(card.shape, a, t, tilt_across)
        low = 10 - placed.min(axis=0)
        high = np.float32([W - 10, H - 10]) - placed.max(axis=0)
        centre = low + (high - low) * np.float32(where)
        offset = np.clip(centre + np.float32([hand.uniform(-max_shift_px, max_shift_px) for _ in range(2)]), low, high)
        frame, sym_in_frame = _place(card, sym_corners, counter, a, t, tilt_across, offset)
        params: dict = {"module_px": round(module_px, 2), "angle": round(a, 1), "tilt": round(t, 3)}
        gain = min(1.0, max(0.35, room_gain * hand.uniform(0.85, 1.15)))
        return SpecFrame(kind, _camera(frame, sym_in_frame, hand, params, gain=gain), payload, symbology, params)
    return frame_at


def main(argv: list[str]) -> int:
    import time

    import zxingcpp

    from agent.idcard.frame_reader import FrameReader
    from agent.idcard.pipeline import FORMATS, DecodePipeline, PipelineSettings
    from bench.idcard_eval import key_of, parse_or_none

    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.idcard_spec_frames",
                                     description="Corpus C: frames drawn from the camera specification only; "
                                                 "prints the read share and every miss with its camera parameters.")
    parser.add_argument("count", type=int, nargs="?", default=50, help="frames to draw (50)")
    parser.add_argument("seed", type=int, nargs="?", default=2026, help="the corpus seed (2026)")
    # The live camera loop's budget by default; the ``idcard decode`` command gives a still
    # image STILL_BUDGET_MS.
    parser.add_argument("budget_ms", type=float, nargs="?", default=None, help="CPU ms per frame")
    args = parser.parse_args(argv)
    count, rng = args.count, random.Random(args.seed)
    settings = PipelineSettings(budget_ms=args.budget_ms) if args.budget_ms else PipelineSettings()
    reader = FrameReader(DecodePipeline(settings))
    totals = {"frames": 0, "raw": 0, "ours": 0, "wrong": 0, "false": 0}
    misses: list[dict] = []
    times = []
    cpu_times = []
    for _ in range(count):
        frame = make_spec_frame(rng)
        gray = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        truth = parse_or_none(frame.payload, frame.symbology) if frame.payload else None
        started, cpu_started = time.perf_counter(), time.thread_time()
        doc = reader.read(gray).document
        times.append((time.perf_counter() - started) * 1000)
        cpu_times.append((time.thread_time() - cpu_started) * 1000)
        if truth is None:
            totals["false"] += doc is not None
            continue
        totals["frames"] += 1
        raw = next((d for r in zxingcpp.read_barcodes(gray, formats=FORMATS)
                    if (d := parse_or_none(bytes(r.bytes), r.format.name))), None)
        totals["raw"] += raw is not None and key_of(raw) == key_of(truth)
        if doc is not None and key_of(doc) == key_of(truth):
            totals["ours"] += 1
        elif doc is not None:
            totals["wrong"] += 1
        else:
            misses.append({"kind": frame.kind, **frame.params})
    n = max(1, totals["frames"])
    print(f"corpus C (specification only): {totals['frames']} frames with an ID code, {count - totals['frames']} without")
    print(f"  raw zxing-cpp {totals['raw']}/{n} ({100 * totals['raw'] / n:.1f}%)   pipeline {totals['ours']}/{n} "
          f"({100 * totals['ours'] / n:.1f}%)   wrong {totals['wrong']}   false {totals['false']}   "
          f"median {sorted(times)[len(times) // 2]:.0f} ms wall, {sorted(cpu_times)[len(cpu_times) // 2]:.0f} ms CPU "
          f"(budget {settings.budget_ms:.0f} CPU ms a frame)")
    for miss in misses:
        print("  miss:", miss)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
