"""Write a synthetic ID-card camera corpus to a directory: ``python -m bench.idcard_corpus DIR [N] [SEED]``.

Each frame is ``NNNN_<kind>.jpg`` plus one ``manifest.jsonl`` line (kind, payload hex, symbology,
distortion parameters). Frames come from :mod:`agent.idcard.synthetic_frames`; people are made up.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from agent.idcard.synthetic_frames import SyntheticFrame, make_frame


def generate(count: int, seed: int) -> list[SyntheticFrame]:
    rng = random.Random(seed)
    return [make_frame(rng) for _ in range(count)]


def write_corpus(directory: Path, frames: list[SyntheticFrame]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for index, frame in enumerate(frames):
            name = f"{index:04d}_{frame.kind}.jpg"
            (directory / name).write_bytes(frame.jpeg)
            manifest.write(json.dumps({"file": name, "kind": frame.kind, "symbology": frame.symbology,
                                       "payload_hex": frame.payload.hex() if frame.payload else None,
                                       "params": frame.params}) + "\n")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    count = int(argv[1]) if len(argv) > 1 else 50
    seed = int(argv[2]) if len(argv) > 2 else 1
    write_corpus(Path(argv[0]), generate(count, seed))
    print(f"wrote {count} frames to {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
