"""A second MRZ corpus, drawn only from the words of the specification (issue 14): card backs with
an OCR-B TD1 zone, MRZ characters 14-40 px high, under corpus C's camera model (any rotation, a
tilt along or across the card, blur up to sigma 1.3, noise, dim light with a gradient, glare in
60% of frames and over the zone in a third of those, JPEG 60-95), a tenth of frames without an
MRZ. It stands in for the independent MRZ corpus that checks us, as corpus C does for barcodes.

It shares no drawing code with :mod:`agent.idcard.synthetic_mrz_frames` (the generator the MRZ
reader was built on) nor with the reader's assumptions: the zone is laid out as ICAO 9303 prints
it (characters at a 2.54 mm pitch, 6 lines per inch, the cap height its own draw, so the pitch is
not the font's advance), each character placed on its own, rendered at four times the size and
reduced with the whole card; ink weight varies (thin to bold print); the rest of the back is
Hershey text, a fingerprint-like blotch, a QR (``qrcode``) or a bar of security print. The light,
lens, sensor and placement are corpus C's own functions (:mod:`bench.idcard_spec_frames`), so the
camera is the same model. Only the OCR-B font (the MRZ's typeface) and the payloads (made-up
people, :mod:`agent.idcard.samples`) are shared. ``python -m bench.idcard_spec_mrz_frames N
[SEED]`` prints how the MRZ reader does on N frames and lists every miss.
"""
from __future__ import annotations

import random
import sys
from dataclasses import dataclass

import cv2
import numpy as np

from agent.idcard import samples
from bench.idcard_spec_frames import _camera, _counter, _fits, _place, _rotated

KINDS = {"co": 40, "cl": 20, "ar": 15, "pe": 15, "none": 10}
CARD_MM = (85.6, 53.98)  # ISO/IEC 7810 ID-1
PITCH_MM = 2.54  # ICAO 9303-3: ten characters per inch
LINE_MM = 25.4 / 6  # six lines per inch
SUPER = 4  # the card is drawn at four times its size in the frame, then reduced


@dataclass(frozen=True)
class SpecMrzFrame:
    kind: str
    jpeg: bytes
    mrz: bytes | None  # the MRZ printed on the card; None when it has none
    params: dict


def _mrz_text(kind: str, rng: random.Random) -> bytes:
    country = {"co": "CO", "cl": "CL", "ar": "AR", "pe": "AR"}[kind]
    person = samples.random_person(rng, country)
    if kind == "pe":  # a Peruvian DNI: eight digits
        person = samples.SyntheticPerson("PE", f"{rng.randrange(10 ** 7, 8 * 10 ** 7):08d}", person.first_name,
                                         person.second_name, person.first_surname, person.second_surname,
                                         person.sex, person.birth_date, None)
    expiry = f"{rng.randint(2026, 2037)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return samples.td1_mrz(person, expiry=expiry, card_serial=f"{rng.randrange(10 ** 9):09d}")


def _ocrb_font(cap_px: float):
    """The OCR-B face at the size whose capital H is ``cap_px`` high (measured, not assumed)."""
    from PIL import ImageFont

    from agent.idcard.mrz.glyphs import font_path

    probe = ImageFont.truetype(str(font_path()), 200)
    box = probe.getbbox("H")
    size = 200 * cap_px / (box[3] - box[1])
    font = ImageFont.truetype(str(font_path()), max(4, round(size)))
    return font, font.getbbox("H")[1]


def _hershey_lines(card: np.ndarray, rng: random.Random, box: tuple[int, int, int, int], scale: float) -> None:
    """Printed data in a plain typeface inside ``box`` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    y = y0 + int(12 * scale)
    while y < y1:
        words = " ".join("".join(rng.choice("ABCDEFGHIJLMNOPRSTUVZ0123456789") for _ in range(rng.randint(2, 9)))
                         for _ in range(rng.randint(1, 4)))
        cv2.putText(card, words, (x0 + rng.randint(0, int(20 * scale)), y), rng.choice([cv2.FONT_HERSHEY_SIMPLEX,
                    cv2.FONT_HERSHEY_DUPLEX]), rng.uniform(0.35, 0.7) * scale, (70, 60, 60), max(1, round(scale)),
                    cv2.LINE_AA)
        y += int(rng.uniform(18, 30) * scale)
        if y > y1 or x1 - x0 < 10:
            break


def _zone_ink(mrz: bytes, cap_px: float, px_per_mm: float, rng: random.Random) -> tuple[np.ndarray, dict]:
    """The MRZ's ink coverage (0-1) over its band, drawn at SUPER times the size and reduced:
    each character placed on its own at the ICAO pitch, print weight thin to bold."""
    from PIL import Image, ImageDraw

    big = px_per_mm * SUPER
    font, cap_offset = _ocrb_font(cap_px * SUPER)
    width, height = round(31 * PITCH_MM * big), round(3.2 * LINE_MM * big)
    pil = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(pil)
    for row, line in enumerate(mrz.decode().split("\n")):
        for col, char in enumerate(line):
            draw.text((col * PITCH_MM * big, row * LINE_MM * big - cap_offset), char, font=font, fill=255)
    layer = np.asarray(pil).copy()
    weight = rng.choice([-1, 0, 0, 0, 1])  # thin, normal or bold print (erode / dilate the ink)
    if weight:
        kernel = np.ones((max(2, round(0.06 * big)),) * 2, np.uint8)
        layer = cv2.dilate(layer, kernel) if weight > 0 else cv2.erode(layer, kernel)
    small = cv2.resize(layer, (round(width / SUPER), round(height / SUPER)), interpolation=cv2.INTER_AREA)
    return small.astype(np.float32) / 255, {"weight": weight}


def _card(mrz: bytes | None, cap_px: float, rng: random.Random) -> tuple[np.ndarray, np.ndarray, dict]:
    """The card back (BGR) at its size in the frame, and the MRZ's four corners on it."""
    pitch_to_cap = rng.uniform(1.0, 1.15)  # ICAO pitch over a cap height of 2.2-2.5 mm
    px_per_mm = cap_px * pitch_to_cap / PITCH_MM
    cw, ch = round(CARD_MM[0] * px_per_mm), round(CARD_MM[1] * px_per_mm)
    paper = np.array([rng.randint(195, 250), rng.randint(195, 250), rng.randint(190, 245)], np.float32)
    card = np.empty((ch, cw, 3), np.float32)
    card[:] = paper
    # Security print: pale wavy lines over the whole back.
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32) / px_per_mm
    waves = np.sin(xx * rng.uniform(1.5, 4) + 3 * np.sin(yy * rng.uniform(0.2, 0.6))) > 0.8
    card[waves] -= rng.uniform(8, 30)
    card = card.astype(np.uint8)  # OpenCV draws text on 8-bit images
    scale = px_per_mm / 8
    mrz_top_mm = CARD_MM[1] - rng.uniform(3.0, 4.5) - 3 * LINE_MM
    _hershey_lines(card, rng, (round(4 * px_per_mm), round(3 * px_per_mm), round(50 * px_per_mm),
                               round((mrz_top_mm - 2) * px_per_mm)), scale)
    extra = rng.choice(["qr", "finger", "photo", "none"])
    if extra == "qr":
        import qrcode

        qr = qrcode.QRCode(box_size=1, border=2)
        qr.add_data(f"https://example.org/v/{rng.randrange(10 ** 12)}")
        qr.make(fit=True)
        side = round(rng.uniform(16, 22) * px_per_mm)
        image = cv2.resize(np.array(qr.make_image().convert("L")), (side, side), interpolation=cv2.INTER_NEAREST)
        x, y = cw - side - round(4 * px_per_mm), round(3 * px_per_mm)
        card[y:y + side, x:x + side] = np.minimum(card[y:y + side, x:x + side],
                                                  (image[..., None] * 0.9 + 20).astype(np.uint8))
    elif extra == "finger":
        centre = (cw - round(18 * px_per_mm), round(16 * px_per_mm))
        for r in range(round(2 * px_per_mm), round(10 * px_per_mm), max(2, round(0.5 * px_per_mm))):
            cv2.ellipse(card, centre, (r, round(r * 1.3)), 0, 0, 360, (110, 100, 100), max(1, round(0.15 * px_per_mm)))
    elif extra == "photo":
        x0, y0 = cw - round(28 * px_per_mm), round(4 * px_per_mm)
        card[y0:y0 + round(24 * px_per_mm), x0:x0 + round(20 * px_per_mm)] = rng.randint(90, 170)
    params: dict = {"pitch_to_cap": round(pitch_to_cap, 3), "back": extra}
    if mrz is not None:
        left_mm, ink = rng.uniform(2.5, 5.5), rng.uniform(5, 70)
        alpha, drawn = _zone_ink(mrz, cap_px, px_per_mm, rng)
        x0, y0 = round(left_mm * px_per_mm), round(mrz_top_mm * px_per_mm)
        h, w = min(alpha.shape[0], ch - y0), min(alpha.shape[1], cw - x0)
        a = alpha[:h, :w, None]
        card[y0:y0 + h, x0:x0 + w] = (card[y0:y0 + h, x0:x0 + w] * (1 - a) + ink * a).astype(np.uint8)
        x1, y1 = x0 + 30 * PITCH_MM * px_per_mm, y0 + 3 * LINE_MM * px_per_mm
        corners = np.float32([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        params.update(ink=round(ink), **drawn)
    else:  # a back without an MRZ: more printed text where it would be
        _hershey_lines(card, rng, (round(4 * px_per_mm), round(mrz_top_mm * px_per_mm), round(80 * px_per_mm),
                                   ch - round(3 * px_per_mm)), scale * 1.3)
        corners = np.float32([[0, 0], [cw, 0], [cw, ch], [0, ch]])
    return card, corners, params


def make_spec_mrz_frame(rng: random.Random, kind: str | None = None) -> SpecMrzFrame:
    kind = kind or rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    mrz = _mrz_text(kind, rng) if kind != "none" else None
    cap_px = rng.uniform(14, 40)
    frame = _counter(rng)
    angle, tilt, tilt_across = rng.uniform(0, 360), rng.uniform(0, 0.18), rng.random() < 0.5
    while True:
        card, zone, params = _card(mrz, cap_px, rng)
        placed = _rotated(card.shape, angle, tilt, tilt_across)
        if _fits(placed):
            break
        cap_px *= 0.95  # too big for the frame at this angle: the card held a little further away
    offset = np.float32([rng.uniform(10 - placed[:, 0].min(), 1910 - placed[:, 0].max()),
                         rng.uniform(10 - placed[:, 1].min(), 1070 - placed[:, 1].max())])
    frame, zone_in_frame = _place(card, zone, frame, angle, tilt, tilt_across, offset)
    params.update(char_px=round(cap_px, 1), angle=round(angle, 1), tilt=round(tilt, 3), across=tilt_across)
    jpeg = _camera(frame, zone_in_frame, rng, params)
    return SpecMrzFrame(kind, jpeg, mrz, params)


def main(argv: list[str]) -> int:
    import statistics
    import time

    from agent.idcard.mrz.reader import read_mrz
    from bench.idcard_eval import key_of, names_of, parse_or_none

    count = int(argv[0]) if argv else 50
    rng = random.Random(int(argv[1]) if len(argv) > 1 else 2026)
    read = names = wrong = false = frames = 0
    times: list[float] = []
    for index in range(count):
        frame = make_spec_mrz_frame(rng)
        gray = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        truth = parse_or_none(frame.mrz, "MRZ") if frame.mrz else None
        started = time.perf_counter()
        attempt = read_mrz(gray)
        times.append((time.perf_counter() - started) * 1000)
        doc = parse_or_none(attempt.text.encode(), "MRZ") if attempt.text else None
        if truth is None:
            false += doc is not None
            continue
        frames += 1
        if doc is not None and key_of(doc) == key_of(truth):
            read += 1
            names += names_of(doc) == names_of(truth)
        elif doc is not None:
            wrong += 1
            print("  WRONG:", index, frame.kind, frame.params)
        else:
            print("  miss:", index, frame.kind, frame.params, attempt.reasons)
    n = max(1, frames)
    print(f"MRZ spec corpus: {frames} frames with an MRZ, {count - frames} without; read {read}/{n} "
          f"({100 * read / n:.1f}%), names {names}/{n}, wrong {wrong}, false {false}, median "
          f"{statistics.median(times):.0f} ms p90 {sorted(times)[int(0.9 * len(times))]:.0f} ms wall")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
