"""Corpus C's burst model (bench.idcard_spec_frames.spec_burst): one card held for many frames.

A burst must hold the *same* card (person, symbol, module size) while the pose moves only a
little and the camera's draws change; and adding it must not change the single-frame corpus, whose
seeds 11, 12 and 99 carry the tuning/holdout figures reported in bench/README.md.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from bench.idcard_spec_frames import ID_KINDS, make_spec_frame, saturated_share, spec_burst


def test_single_frames_are_reproducible_from_their_seed() -> None:
    first = [make_spec_frame(random.Random(11)) for _ in range(2)]
    assert first[0].jpeg == first[1].jpeg and first[0].params == first[1].params


@pytest.mark.parametrize("card_seed", [3, 8])
def test_a_burst_holds_one_card_and_moves_it_a_little(card_seed: int) -> None:
    frame_of = spec_burst(card_seed)
    frames = [frame_of(i) for i in range(4)]
    assert frames[0].kind in ID_KINDS and frames[0].payload
    assert len({(f.payload, f.symbology, f.params["module_px"]) for f in frames}) == 1  # the same card
    angles = [f.params["angle"] for f in frames]
    turn = max(abs((a - angles[0] + 180) % 360 - 180) for a in angles)
    assert 0 < turn <= 6.0  # the hand moves, by a few degrees at most (+-3 each frame from one pose)
    assert len({f.jpeg for f in frames}) == 4  # every frame a new exposure
    assert frame_of(2).jpeg == frames[2].jpeg  # frame i is a function of (card, i): reruns compare


def test_glare_clip_is_the_share_of_the_symbol_driven_to_white() -> None:
    # Left half of the symbol saturated in every channel, the right half grey: half is lost.
    image = np.full((100, 100, 3), 120, np.uint8)
    image[:, :50] = 255
    square = np.float32([[20, 20], [80, 20], [80, 80], [20, 80]])
    assert saturated_share(image, square) == pytest.approx(0.5, abs=0.03)
    image[:, :50, 1] = 249  # one channel short of white: not lost
    assert saturated_share(image, square) == 0.0
    assert saturated_share(image, np.float32([[50, 50]] * 4)) == 0.0  # no symbol in the frame


def test_every_glare_frame_reports_how_much_of_its_symbol_is_lost() -> None:
    rng = random.Random(11)
    frames = [make_spec_frame(rng, "cl_qr") for _ in range(3)]
    assert any("glare" in f.params for f in frames)
    for frame in frames:
        assert ("glare_clip" in frame.params) == ("glare" in frame.params)
        assert 0.0 <= frame.params.get("glare_clip", 0.0) <= 1.0
