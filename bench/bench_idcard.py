"""ID documents on synthetic camera frames, three corpora side by side in one run:

- A: the barcode corpus the pipeline was tuned on (:mod:`agent.idcard.synthetic_frames`);
- B: an independent barcode corpus sharing no drawing code (:mod:`agent.idcard.synthetic_field_frames`),
  the one pipeline changes are judged on;
- C: a third barcode corpus drawn only from the specification's words
  (:mod:`bench.idcard_spec_frames`), the closest stand-in for the independent corpus that checks us;
  its tuning seeds (``--seed-c``) and a holdout seed (``--frames-c-holdout``, ``--holdout-seed-c``);
- MRZ: card backs with OCR-B TD1 zones, characters 14-40 px high, 10% without an MRZ
  (:mod:`agent.idcard.synthetic_mrz_frames`, the generator the MRZ reader was built on);
- MRZ spec: a second MRZ corpus drawn only from the specification's words under corpus C's camera
  model (:mod:`bench.idcard_spec_mrz_frames`), own seeds (``--seed-mrz-spec``) and a holdout seed
  (``--frames-mrz-spec-holdout``, ``--holdout-seed-mrz-spec``).

Decoders: raw zxing-cpp on the whole frame, raw Tesseract on the whole frame (MRZ corpus, a
subset: it takes seconds a frame), Tesseract on our levelled zone (engine comparison), and our
pipeline (``FrameReader``: MRZ then barcode). Share of frames with every key field right
(names as a second figure), wrong and false reads, median and p90 wall ms per frame and median
CPU ms (the machine is shared: CPU time is the steadier figure). Then bursts: one card held for
30 frames (new light, glare, blur, noise and a few degrees of hand movement each frame): share
read within 1, 5, 10 and 30 frames, wrong reads and time to the first correct read at 15 and 30
fps; on the MRZ and corpus-B generators (``--bursts`` cards) and on corpus C's camera model
(``--bursts-c`` cards, :func:`bench.idcard_spec_frames.spec_burst`).

Targets: B >= 93%, MRZ >= 90%, median <= 80 ms (barcode) / 150 ms (MRZ), 0 false or wrong reads,
bursts >= 99% within 10 frames. ``python -m bench idcard [--frames-a N --frames-b N --frames-mrz N
--tesseract-frames N --bursts N --bursts-c N --seed S --frames-b-holdout N --holdout-seed S --frames-c N --seed-c S
--frames-c-holdout N --holdout-seed-c S --frames-mrz-spec N --seed-mrz-spec S --frames-mrz-spec-holdout N
--holdout-seed-mrz-spec S]``.
"""
from __future__ import annotations

import argparse
import random
import shutil
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np
import zxingcpp

from agent.idcard.frame_reader import FrameReader
from agent.idcard.pipeline import FORMATS, DecodePipeline
from agent.idcard.schema import IdDocument
from agent.idcard.synthetic_field_frames import make_field_frame
from agent.idcard.synthetic_frames import make_frame
from agent.idcard.synthetic_mrz_frames import make_mrz_frame
from bench.common import percentile
from bench.idcard_spec_frames import make_spec_frame, spec_burst
from bench.idcard_spec_mrz_frames import make_spec_mrz_frame
from bench.idcard_eval import (HEADER, Decoder, evaluate, key_of, parse_or_none, tesseract_on_levelled_zone,
                               tesseract_whole_frame)


def raw_zxing(gray: np.ndarray) -> IdDocument | None:
    for result in zxingcpp.read_barcodes(gray, formats=FORMATS):
        doc = parse_or_none(bytes(result.bytes), result.format.name)
        if doc:
            return doc
    return None


def reader_decoder(reader: FrameReader) -> Decoder:
    return lambda gray: reader.read(gray).document


def _gray(jpeg: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)


def _corpora(args: argparse.Namespace) -> dict[str, tuple[list[np.ndarray], list[IdDocument | None]]]:
    out = {}
    rng = random.Random(args.seed)
    started = time.perf_counter()
    frames_a = [make_frame(rng) for _ in range(args.frames_a)]
    out["A (tuned)"] = ([_gray(f.jpeg) for f in frames_a],
                        [parse_or_none(f.payload, f.symbology) if f.payload else None for f in frames_a])
    frames_b = [make_field_frame(rng) for _ in range(args.frames_b)]
    out["B (untuned)"] = ([_gray(f.jpeg) for f in frames_b],
                          [parse_or_none(f.payload, f.symbology) if f.payload else None for f in frames_b])
    if args.frames_b_holdout:
        # A second corpus-B draw from its own seed, for decisions made on the first: report both,
        # and never look at this one while choosing a change.
        holdout_rng = random.Random(args.holdout_seed)
        frames_h = [make_field_frame(holdout_rng) for _ in range(args.frames_b_holdout)]
        out["B holdout"] = ([_gray(f.jpeg) for f in frames_h],
                            [parse_or_none(f.payload, f.symbology) if f.payload else None for f in frames_h])
    for label, count, seed in (("C (spec only)", args.frames_c, args.seed_c),
                               ("C holdout", args.frames_c_holdout, args.holdout_seed_c)):
        if count:  # own seeds: C's frames do not shift when the other corpora's sizes change
            c_rng = random.Random(seed)
            frames_c = [make_spec_frame(c_rng) for _ in range(count)]
            out[label] = ([_gray(f.jpeg) for f in frames_c],
                          [parse_or_none(f.payload, f.symbology) if f.payload else None for f in frames_c])
    frames_m = [make_mrz_frame(rng) for _ in range(args.frames_mrz)]
    out["MRZ"] = ([_gray(f.jpeg) for f in frames_m], [parse_or_none(f.mrz, "MRZ") if f.mrz else None for f in frames_m])
    for label, count, seed in (("MRZ spec", args.frames_mrz_spec, args.seed_mrz_spec),
                               ("MRZ spec holdout", args.frames_mrz_spec_holdout, args.holdout_seed_mrz_spec)):
        if count:
            s_rng = random.Random(seed)
            frames_s = [make_spec_mrz_frame(s_rng) for _ in range(count)]
            out[label] = ([_gray(f.jpeg) for f in frames_s],
                          [parse_or_none(f.mrz, "MRZ") if f.mrz else None for f in frames_s])
    print(f"corpora: A {len(frames_a)}, B {len(frames_b)}, B holdout {args.frames_b_holdout}, C {args.frames_c}, "
          f"C holdout {args.frames_c_holdout}, MRZ {len(frames_m)}, MRZ spec {args.frames_mrz_spec}, "
          f"MRZ spec holdout {args.frames_mrz_spec_holdout} frames of 1920x1080 "
          f"made in {time.perf_counter() - started:.0f} s")
    # A corpus asked for with 0 frames is left out (run only the corpora you need); one whose frames
    # hold no ID document at all would measure nothing.
    out = {name: corpus for name, corpus in out.items() if corpus[0]}
    for name, (_, truths) in out.items():
        assert sum(t is not None for t in truths) > 0, name
    return out


def _burst_card(kind: str, card_seed: int) -> Callable[[int], tuple[np.ndarray, IdDocument]]:
    held_c = spec_burst(card_seed) if kind == "c" else None
    def frame(index: int) -> tuple[np.ndarray, IdDocument]:
        camera = random.Random(card_seed * 1000 + index)
        if kind == "mrz":
            f = make_mrz_frame(random.Random(card_seed), camera=camera, jitter_deg=3.0,
                               kind=random.Random(card_seed).choice(["co_digital", "cl_mrz", "ar_mrz", "pe_mrz"]))
            return _gray(f.jpeg), parse_or_none(f.mrz, "MRZ")
        if kind == "c":  # corpus C's camera model: same card, a small hand movement and new light each frame
            assert held_c is not None
            s = held_c(index)
            return _gray(s.jpeg), parse_or_none(s.payload, s.symbology)
        f = make_field_frame(random.Random(card_seed), camera=camera, jitter_deg=3.0,
                             kind=random.Random(card_seed).choice(["co_cedula", "ar_dni", "cl_qr", "ar_qr_2026"]))
        return _gray(f.jpeg), parse_or_none(f.payload, f.symbology)
    return frame


def bursts(name: str, kind: str, cards: int, seed: int, reader: FrameReader, max_frames: int = 30) -> None:
    if cards == 0:  # e.g. --bursts 0: nothing to report
        return
    decode = reader_decoder(reader)
    first: list[int | None] = []
    times: dict[int, list[float]] = {15: [], 30: []}
    wrong = 0
    for card in range(cards):
        frame_of = _burst_card(kind, seed + card)
        elapsed = {15: 0.0, 30: 0.0}
        found = None
        for index in range(max_frames):
            gray, truth = frame_of(index)
            t0 = time.perf_counter()
            doc = decode(gray)
            ms = (time.perf_counter() - t0) * 1000
            for fps in elapsed:  # a frame is taken when the previous one is done, at the camera's rate at best
                elapsed[fps] += max(ms, 1000 / fps)
            if doc is not None:
                if key_of(doc) == key_of(truth):
                    found = index + 1
                    break
                wrong += 1
                break  # the capture would have stopped here, with the wrong person
        first.append(found)
        if found:
            for fps in times:
                times[fps].append(elapsed[fps])
    read = {n: sum(1 for f in first if f and f <= n) for n in (1, 5, 10, max_frames)}
    line = " ".join(f"within {n}: {r}/{cards} ({r / cards:.1%})" for n, r in read.items())
    timing = " ".join(f"{fps} fps: median {statistics.median(v):.0f} ms p90 {percentile(v, 90):.0f} ms"
                      for fps, v in times.items() if v)
    print(f"burst {name}: {cards} cards, {line}, wrong {wrong}; time to first read {timing}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_idcard")
    parser.add_argument("--frames-a", type=int, default=150)
    parser.add_argument("--frames-b", type=int, default=150)
    parser.add_argument("--frames-mrz", type=int, default=150)
    parser.add_argument("--tesseract-frames", type=int, default=25)
    parser.add_argument("--bursts", type=int, default=30)
    parser.add_argument("--bursts-c", type=int, default=60)  # cards held on corpus C's camera model
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--frames-b-holdout", type=int, default=0)
    parser.add_argument("--holdout-seed", type=int, default=202)
    parser.add_argument("--frames-c", type=int, default=150)
    parser.add_argument("--seed-c", type=int, default=11)  # C's tuning seeds were 11 and 12
    parser.add_argument("--frames-c-holdout", type=int, default=0)
    parser.add_argument("--holdout-seed-c", type=int, default=99)
    parser.add_argument("--frames-mrz-spec", type=int, default=150)
    parser.add_argument("--seed-mrz-spec", type=int, default=1)  # MRZ spec tuning seeds were 1 and 2
    parser.add_argument("--frames-mrz-spec-holdout", type=int, default=0)
    parser.add_argument("--holdout-seed-mrz-spec", type=int, default=7)
    args = parser.parse_args(argv)

    corpora = _corpora(args)
    pipeline = DecodePipeline()
    reader = FrameReader(pipeline)
    barcode_only = FrameReader(pipeline, mrz=False)
    results = {}
    for corpus, (grays, truths) in corpora.items():
        print(f"\n--- corpus {corpus}: {sum(t is not None for t in truths)} frames with a document, "
              f"{sum(t is None for t in truths)} without")
        print(HEADER)
        decoders: list[tuple[str, Decoder, int]] = [("raw zxing-cpp", raw_zxing, len(grays))]
        if corpus.startswith("MRZ spec"):
            pass  # the engine comparison runs on the MRZ corpus only
        elif corpus == "MRZ" and shutil.which("tesseract") is None:
            print("raw Tesseract / Tesseract on our zone: n/a (tesseract-ocr is not installed)")
        elif corpus == "MRZ":
            decoders += [("raw Tesseract, whole frame", tesseract_whole_frame, args.tesseract_frames),
                         ("Tesseract on our levelled zone", tesseract_on_levelled_zone, args.tesseract_frames),
                         ("our OCR-B classifier (same frames)", reader_decoder(reader), args.tesseract_frames)]
        else:
            decoders.append(("pipeline, barcode only", reader_decoder(barcode_only), len(grays)))
        decoders.append(("pipeline (MRZ + barcode)", reader_decoder(reader), len(grays)))
        for name, decoder, count in decoders:
            if count == 0:  # e.g. --tesseract-frames 0: nothing to time
                continue
            score = evaluate(name, decoder, grays[:count], truths[:count])
            results[(corpus, name)] = score
            print(score.row())
    bursts("MRZ cards", "mrz", args.bursts, args.seed, reader)
    bursts("barcode cards (corpus B generator)", "b", args.bursts, args.seed + 7919, reader)
    if args.bursts_c:
        bursts("barcode cards (corpus C camera model)", "c", args.bursts_c, args.seed + 104729, reader)
    b, m = results.get(("B (untuned)", "pipeline (MRZ + barcode)")), results.get(("MRZ", "pipeline (MRZ + barcode)"))
    if b and m and b.frames and m.frames:
        met = (b.key_ok / b.frames >= 0.93 and m.key_ok / m.frames >= 0.90 and statistics.median(b.wall_ms) <= 80
               and statistics.median(m.wall_ms) <= 150 and not any(s.false or s.wrong for (c, n), s in results.items()
                                                                   if n.startswith("pipeline")))
        print(f"targets (B >= 93%, MRZ >= 90%, median <= 80/150 ms, 0 false/wrong): {'MET' if met else 'NOT MET'}")
    else:
        print("targets (B >= 93%, MRZ >= 90%, ...): not evaluated (corpus B or MRZ was not run)")
    for corpus in ("MRZ spec", "MRZ spec holdout"):
        if (c := results.get((corpus, "pipeline (MRZ + barcode)"))) and c.frames:
            print(f"corpus {corpus}: {c.key_ok}/{c.frames} = {c.key_ok / c.frames:.1%} "
                  f"({'meets' if c.key_ok / c.frames >= 0.90 else 'below'} the 90% MRZ target), wrong {c.wrong}, "
                  f"false {c.false}, median {statistics.median(c.wall_ms):.0f} ms wall, "
                  f"{statistics.median(c.cpu_ms):.0f} ms CPU")
    for corpus in ("C (spec only)", "C holdout"):  # the stand-in for the corpus that checks us
        if (c := results.get((corpus, "pipeline (MRZ + barcode)"))) and c.frames:
            print(f"corpus {corpus}: {c.key_ok}/{c.frames} = {c.key_ok / c.frames:.1%} "
                  f"({'meets' if c.key_ok / c.frames >= 0.93 else 'below'} the 93% target), "
                  f"median {statistics.median(c.wall_ms):.0f} ms wall")
    return 0
