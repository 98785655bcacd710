"""ID-card barcode reading on synthetic camera frames: raw zxing-cpp vs raw pyzbar vs our pipeline.

All three see the same decoded grayscale frames (JPEG decoding is timed separately). A frame
counts as read when the decoder's bytes parse into a document equal, field for field, to the
one parsed from the true payload. False reads: a person returned from a frame with no ID code
(empty card, or a product EAN-13). Targets for the pipeline: >= 95% read, median <= 80 ms/frame,
0 false reads.

``python -m bench idcard`` (default 240 frames) or
``python -c "import bench.bench_idcard as b; b.main(['--frames', '1000'])"``.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter
from collections.abc import Callable

import cv2
import numpy as np
import zxingcpp

from agent.idcard.errors import IdCardError
from agent.idcard.parsers import parse_any
from agent.idcard.pipeline import FORMATS, DecodePipeline, PipelineSettings
from agent.idcard.schema import IdDocument
from bench.idcard_corpus import generate

Decoder = Callable[[np.ndarray], IdDocument | None]


def _parse(data: bytes, symbology: str) -> IdDocument | None:
    try:
        return parse_any(data, symbology)
    except IdCardError:
        return None


def raw_zxing(gray: np.ndarray) -> IdDocument | None:
    for result in zxingcpp.read_barcodes(gray, formats=FORMATS):
        doc = _parse(bytes(result.bytes), result.format.name)
        if doc:
            return doc
    return None


def raw_pyzbar(gray: np.ndarray) -> IdDocument | None:
    from pyzbar import pyzbar  # needs libzbar0

    for result in pyzbar.decode(gray):
        doc = _parse(result.data, result.type)
        if doc:
            return doc
    return None


def make_pipeline_decoder(settings: PipelineSettings | None = None) -> Decoder:
    pipeline = DecodePipeline(settings)
    found: dict[str, IdDocument] = {}

    def accept(data: bytes, symbology: str) -> bool:
        doc = _parse(data, symbology)
        if doc:
            found["doc"] = doc
        return doc is not None

    def decode(gray: np.ndarray) -> IdDocument | None:
        found.clear()
        return found.get("doc") if pipeline.decode(gray, accept) else None

    return decode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench_idcard")
    parser.add_argument("--frames", type=int, default=240)
    parser.add_argument("--seed", type=int, default=20250101)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    frames = generate(args.frames, args.seed)
    print(f"corpus: {len(frames)} synthetic 1920x1080 frames in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{k}={v}" for k, v in sorted(Counter(f.kind for f in frames).items())))
    decode_ms = []
    grays = []
    for frame in frames:
        t0 = time.perf_counter()
        grays.append(cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_GRAYSCALE))
        decode_ms.append((time.perf_counter() - t0) * 1000)
    print(f"JPEG decode (not included below): median {statistics.median(decode_ms):.1f} ms/frame")
    truths = [_parse(f.payload, f.symbology) if f.payload else None for f in frames]
    assert all(t is not None for t, f in zip(truths, frames) if f.payload), "corpus payload does not parse"

    decoders: list[tuple[str, Decoder]] = [("raw zxing-cpp", raw_zxing), ("raw pyzbar", raw_pyzbar),
                                           ("pipeline (whole frame first)",
                                            make_pipeline_decoder(PipelineSettings(whole_frame_first=True))),
                                           ("pipeline", make_pipeline_decoder())]
    results: dict[str, list[IdDocument | None]] = {}
    medians: dict[str, float] = {}
    print(f"{'decoder':<29} {'read ok':>14} {'wrong':>6} {'false':>6} {'median ms':>10} {'p90 ms':>8}  per kind")
    for name, decoder in decoders:
        docs, times = [], []
        for gray in grays:
            t0 = time.perf_counter()
            docs.append(decoder(gray))
            times.append((time.perf_counter() - t0) * 1000)
        results[name] = docs
        with_code = [(d, t, f) for d, t, f in zip(docs, truths, frames) if f.payload]
        ok = sum(1 for d, t, _ in with_code if d == t)
        wrong = sum(1 for d, t, _ in with_code if d is not None and d != t)
        false = sum(1 for d, f in zip(docs, frames) if not f.payload and d is not None)
        per_kind = Counter(f.kind for d, t, f in with_code if d == t)
        totals = Counter(f.kind for _, _, f in with_code)
        medians[name] = statistics.median(times)
        kinds = " ".join(f"{k}:{per_kind[k]}/{totals[k]}" for k in sorted(totals))
        print(f"{name:<29} {ok:>5}/{len(with_code):<4} {ok / len(with_code):>4.0%} {wrong:>6} {false:>6} "
              f"{medians[name]:>10.1f} {sorted(times)[int(0.9 * len(times))]:>8.1f}  {kinds}")
    base = medians["raw zxing-cpp"]
    print(f"pipeline median time = {medians['pipeline'] / base:.2f} x raw zxing-cpp (same run)")
    pipeline_missed = [i for i, f in enumerate(frames) if f.payload and results["pipeline"][i] != truths[i]]
    pyzbar_adds = sum(1 for i in pipeline_missed if results["raw pyzbar"][i] == truths[i])
    print(f"pyzbar would add {pyzbar_adds} reads to the {len(pipeline_missed)} frames the pipeline missed")
    n_code = sum(1 for f in frames if f.payload)
    ok_pipe = n_code - len(pipeline_missed)
    false_pipe = sum(1 for d, f in zip(results["pipeline"], frames) if not f.payload and d is not None)
    met = ok_pipe / n_code >= 0.95 and medians["pipeline"] <= 80 and false_pipe == 0
    print(f"targets (>=95% read, median <=80 ms, 0 false reads): {'MET' if met else 'NOT MET'}")
    return 0
