"""The fallback PDF417 decoder (agent.idcard.pdf417): Reed-Solomon over GF(929) with erasures,
the high-level decoder against pdf417gen's encoder, the sampler on a glared symbol whose lost
codewords only erasure decoding corrects, and clean refusals of garbage."""
from __future__ import annotations

import random

import cv2
import numpy as np
import pdf417gen
from hypothesis import given, settings
from hypothesis import strategies as st
from pdf417gen.compaction import compact
from pdf417gen.error_correction import compute_error_correction_code_words

from agent.idcard.parsers import parse_any
from agent.idcard.pdf417 import highlevel, rs929, runs
from agent.idcard.pdf417.decode import decode_levelled
from agent.idcard.pdf417.sampler import read_matrix
from agent.idcard.pipeline import DecodePipeline, PipelineSettings
from agent.idcard.samples import ar_dni_payload, cl_2002_payload, co_cedula_payload, random_person


def _codeword(data: list[int], level: int) -> list[int]:
    return data + compute_error_correction_code_words(data, level)


def _damage(word: list[int], errors: int, erasures: int, rng: random.Random) -> tuple[list[int], list[int]]:
    positions = rng.sample(range(len(word)), errors + erasures)
    damaged = list(word)
    for p in positions:
        damaged[p] = (damaged[p] + rng.randrange(1, 929)) % 929
    return damaged, positions[errors:]


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 1 << 30), st.integers(1, 5), st.integers(1, 120))
def test_rs_corrects_errors_and_erasures_within_capacity(seed: int, level: int, size: int) -> None:
    rng = random.Random(seed)
    word = _codeword([rng.randrange(929) for _ in range(size)], level)
    capacity = 2 ** (level + 1) - rs929.DETECTION_RESERVE
    errors = rng.randint(0, min(capacity // 2, len(word) // 2))
    erasures = rng.randint(0, min(capacity - 2 * errors, len(word) - errors))
    damaged, erased = _damage(word, errors, erasures, rng)
    assert rs929.correct(damaged, 2 ** (level + 1), erased) == word


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 1 << 30), st.integers(1, 5), st.integers(20, 120))
def test_rs_beyond_capacity_refuses_or_returns_a_valid_word(seed: int, level: int, size: int) -> None:
    """Past 2 * errors + erasures = EC - 2 nothing is promised but this: never a word that is
    not a codeword, and never one the decoder pretends is nearer than its capacity."""
    rng = random.Random(seed)
    k = 2 ** (level + 1)
    word = _codeword([rng.randrange(929) for _ in range(size)], level)
    erasures = rng.randint(0, k - 2)
    errors = (k - 2 - erasures) // 2 + rng.randint(1, 4)
    damaged, erased = _damage(word, errors, erasures, rng)
    fixed = rs929.correct(damaged, k, erased)
    if fixed is not None:
        assert not any(rs929.syndromes(fixed, k))
        changed = sum(1 for i, (a, b) in enumerate(zip(fixed, damaged)) if a != b and i not in erased)
        assert 2 * changed + len(erased) <= k - rs929.DETECTION_RESERVE


def test_rs_refuses_too_many_erasures_and_most_wrecked_words() -> None:
    rng = random.Random(5)
    word = _codeword([rng.randrange(929) for _ in range(60)], 3)
    assert rs929.correct(word, 16, list(range(15))) is None  # 15 > 16 - 2
    refused = sum(rs929.correct(_damage(word, 12, 0, rng)[0], 16) is None for _ in range(200))
    assert refused >= 195


def _payloads() -> list[bytes]:
    rng = random.Random(11)
    out = []
    for seed in range(6):
        out.append(co_cedula_payload(random_person(rng, "CO"), seed=seed))
        out.append(ar_dni_payload(random_person(rng, "AR"), old_format=seed % 2 == 0))
        out.append(cl_2002_payload(random_person(rng, "CL")))
    return out + [bytes(range(256)), b"0123456789" * 7, b"Mixed 123 text; with @ <punct> and |lower| ~ 42.5%"]


def test_high_level_decodes_what_pdf417gen_encodes() -> None:
    for payload in _payloads():
        codewords = list(compact(payload))
        assert highlevel.decode([len(codewords) + 1] + codewords) == payload


def test_high_level_refuses_a_bad_length_descriptor_and_macro_blocks() -> None:
    codewords = list(compact(b"ABC"))
    assert highlevel.decode([len(codewords) + 2] + codewords) is None
    assert highlevel.decode([3, 928, 1]) is None


def _glared_symbol() -> tuple[np.ndarray, bytes]:
    """A level-5 PDF417 (64 EC codewords) with an Argentine DNI payload and a saturated
    specular blob across its middle rows, a little blur: the blob hides some 50 codewords."""
    payload = ar_dni_payload(random_person(random.Random(7), "AR"))
    symbol = np.array(pdf417gen.render_image(pdf417gen.encode(payload, columns=6, security_level=5), scale=3,
                                             ratio=3, padding=8).convert("L")).astype(np.float32) * 0.75 + 30
    h, w = symbol.shape
    yy, xx = np.mgrid[0:h, 0:w]
    blob = np.exp(-((xx - w * 0.45) ** 2 + (yy - h * 0.5) ** 2 / 0.5) / (2 * (0.17 * h) ** 2))
    return cv2.GaussianBlur(np.clip(symbol + 4000 * blob, 0, 255).astype(np.uint8), (0, 0), 0.8), payload


def test_a_glared_symbol_is_read_through_erasures_errors_alone_would_not_fix() -> None:
    """More codewords lost to glare than half the EC codewords: Reed-Solomon that counts them as
    errors (zxing-cpp's) cannot correct them; counted as erasures they are corrected."""
    image, payload = _glared_symbol()
    matrix = read_matrix(runs.edges_of(image, max(15, image.shape[1] // 10)))
    assert matrix is not None and (matrix.columns, matrix.level) == (6, 5)
    ec_count = 2 ** (matrix.level + 1)
    assert len(matrix.erasures) > ec_count // 2
    assert rs929.correct([max(0, v) for v in matrix.codewords], ec_count) is None  # as errors: beyond capacity
    assert decode_levelled(image) == payload


def test_the_pipeline_counts_a_fallback_read_only_when_accept_takes_it() -> None:
    image, payload = _glared_symbol()
    frame = cv2.copyMakeBorder(image, 60, 60, 60, 60, cv2.BORDER_CONSTANT, value=140)
    seen: list[tuple[bytes, str]] = []

    def refuse(data: bytes, fmt: str) -> bool:
        seen.append((data, fmt))
        return False

    settings = PipelineSettings(budget_ms=5000.0, wall_cap_ms=30000.0, variant_order=("pdf417_ec",))
    assert DecodePipeline(settings).decode(frame, refuse) is None
    assert (payload, "PDF417") in seen
    found = DecodePipeline(settings).decode(frame, lambda data, fmt: parse_any(data, fmt) is not None)
    assert found is not None and found.data == payload and found.stage == "candidate0_pdf417_ec"


def test_garbage_is_a_clean_refusal() -> None:
    rng = np.random.default_rng(3)
    assert decode_levelled(rng.integers(0, 256, (300, 900), dtype=np.uint8)) is None
    assert decode_levelled(np.full((200, 600), 255, np.uint8)) is None
    assert decode_levelled(np.zeros((20, 20), np.uint8)) is None
    stripes = np.tile(np.repeat(np.array([0, 255], np.uint8), 3), (120, 100))
    assert decode_levelled(stripes) is None
