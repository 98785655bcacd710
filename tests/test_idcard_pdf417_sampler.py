"""The PDF417 fallback's sampler on synthetic symbols (pdf417gen): columns found again where
the grid misplaces them, a second Reed-Solomon try from each cell's best guess, and cells no
scanline reads matched whole against their cluster's patterns."""
from __future__ import annotations

import dataclasses
import random

import cv2
import numpy as np
import pdf417gen
import pytest
from pdf417gen.codes import CODES
from pdf417gen.encoding import encode_high

from agent.idcard.pdf417 import decode, runs, sampler, templates
from agent.idcard.pdf417.decode import codewords_of, decode_levelled
from agent.idcard.pdf417.sampler import Matrix
from agent.idcard.samples import co_cedula_payload, random_person


def _payload() -> bytes:
    return co_cedula_payload(random_person(random.Random(3), "CO"), seed=3)


def _symbol(payload: bytes, columns: int, level: int, module: float, blur: float, noise: float,
            row_height: float = 3.0, seed: int = 0) -> np.ndarray:
    """The symbol at ``module`` pixels a module (rows ``row_height`` modules high), dark 40 on
    light 200, Gaussian blur and noise: the corpus's small-module camera frame, levelled."""
    image = pdf417gen.render_image(pdf417gen.encode(payload, columns=columns, security_level=level), scale=1, ratio=1,
                                   padding=4)
    modules = np.array(image.convert("L")).astype(np.float32)
    h, w = modules.shape
    size = (round(w * module), round(h * module * row_height))
    big = cv2.resize(modules, (w * 8, h * 8), interpolation=cv2.INTER_NEAREST)
    crop = cv2.resize(big, size, interpolation=cv2.INTER_AREA) / 255 * 160 + 40
    crop = cv2.GaussianBlur(crop, (0, 0), blur) + np.random.default_rng(seed).normal(0, noise, crop.shape)
    return np.clip(crop, 0, 255).astype(np.uint8)


def test_columns_are_found_again_where_the_grid_bows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The grid's perspective comes from the start and stop patterns' module widths; 2% of noise
    on them (what a 2-px module gives) bows the middle columns by over a module, where the
    nearest bar edge is the wrong one. The second pass, at each column's measured drift,
    reads them: without it most cells are erased."""
    payload = _payload()
    crop = _symbol(payload, 14, 3, 2.3, 0.8, 4.0)
    find_grid = sampler.find_grid

    def skewed(edges: runs.Edges) -> sampler.Grid | None:
        grid = find_grid(edges)
        assert grid is not None
        return dataclasses.replace(grid, left_module=grid.left_module * 1.02, right_module=grid.right_module / 1.02)

    monkeypatch.setattr(sampler, "find_grid", skewed)
    matrix = sampler.read_matrix(runs.edges_of(crop, crop.shape[1] // 10))
    assert matrix is not None and (matrix.columns, matrix.level) == (14, 3)
    assert len(matrix.erasures) < 0.03 * matrix.rows * matrix.columns
    assert codewords_of(matrix) is not None


def _matrix(level: int, codewords: list[int], guesses: list[int]) -> Matrix:
    columns = 12
    return Matrix(len(codewords) // columns, columns, level, codewords, [i for i, v in enumerate(codewords) if v < 0],
                  guesses)


def test_best_guesses_correct_what_the_clear_votes_leave() -> None:
    truth = list(encode_high(_payload(), 12, 3))  # 16 EC codewords: 14 erasures corrected
    data = truth[:len(truth) - 16]
    rng = random.Random(1)
    cells = rng.sample(range(len(truth)), 24)
    strict = [-1 if i in cells else v for i, v in enumerate(truth)]
    guesses = [-1 if i in cells[:6] else v for i, v in enumerate(truth)]  # 18 of the 24 guessed right
    assert codewords_of(_matrix(3, strict, strict)) is None  # 24 erasures: beyond capacity
    assert codewords_of(_matrix(3, strict, guesses)) == data
    # Erasures within capacity and one clear vote wrong: the strict try fails, the guesses fix it.
    strict = [-1 if i in cells[:13] else v for i, v in enumerate(truth)]
    strict[cells[20]] = (truth[cells[20]] + 1) % 929
    assert codewords_of(_matrix(3, strict, strict)) is None
    assert codewords_of(_matrix(3, strict, truth)) == data
    # Guesses wrong in many cells: a refusal, never someone else's data.
    wrong = [(v + 7) % 929 if i in cells else v for i, v in enumerate(truth)]
    assert codewords_of(_matrix(3, strict, wrong)) is None


def test_a_codeword_is_matched_by_its_profile() -> None:
    """Clean profiles of known codewords (bars 40, spaces 200, sampled as the sampler does,
    with a module on either side) match their own pattern; a flat or noisy one matches none."""
    rng = np.random.default_rng(2)
    clusters = np.array([0, 1, 2, 0, 1, 2])
    values = rng.integers(0, 929, len(clusters))
    rows = []
    for cluster, value in zip(clusters, values):
        bits = [(CODES[cluster][value] >> (16 - k)) & 1 for k in range(17)]
        modules = [0] + bits + [1]  # a space before, the next codeword's first bar after
        rows.append(np.repeat(200 - 160 * np.asarray(modules, np.float32), templates.SAMPLES))
    profile = cv2.GaussianBlur(np.asarray(rows), (7, 1), 0.8)
    assert templates.match(profile, clusters).tolist() == values.tolist()
    flat = np.full((3, profile.shape[1]), 120, np.float32)
    assert templates.match(flat, np.arange(3)).tolist() == [-1, -1, -1]
    noise = rng.normal(120, 40, (60, profile.shape[1])).astype(np.float32)
    assert (templates.match(noise, np.arange(60) % 3) >= 0).sum() <= 6  # a tenth: errors Reed-Solomon pays for


def test_cells_no_scanline_reads_are_read_from_their_profile() -> None:
    """2.3-px modules under blur and heavy noise: the run reader leaves more cells unread than
    16 EC codewords restore; matched against their cluster's patterns, nearly all are read."""
    payload = _payload()
    crop = _symbol(payload, 14, 3, 2.3, 1.0, 22.0)
    edges = runs.edges_of(crop, crop.shape[1] // 10)
    alone = sampler.read_matrix(edges)
    assert alone is not None and alone.guesses is not None
    assert sum(v < 0 for v in alone.guesses) > 14
    assert codewords_of(alone) is None
    matched = sampler.read_matrix(edges, crop)
    assert matched is not None and matched.guesses is not None
    assert sum(v < 0 for v in matched.guesses) < 8
    assert decode_levelled(crop) == payload
    assert decode_levelled(np.ascontiguousarray(crop[1:][::-1, ::-1])) == payload  # upside down, odd height


def test_a_nearly_read_symbol_is_sampled_again_from_every_pixel_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every other pixel row leaves 20 cells without a guess (16 EC codewords restore 14): the
    symbol is sampled again from every row. Left with 200, it is not (a refusal, no cost)."""
    payload = _payload()
    crop = _symbol(payload, 14, 3, 2.3, 0.8, 4.0)
    read = sampler.read_matrix
    steps: list[int] = []
    lost = 20

    def every_other_row_short(edges: runs.Edges, image: np.ndarray | None = None) -> Matrix | None:
        steps.append(edges.step)
        matrix = read(edges, image)
        if matrix is None or edges.step == 1:
            return matrix
        cells = [-1 if i < lost else v for i, v in enumerate(matrix.codewords)]
        return dataclasses.replace(matrix, codewords=cells, erasures=list(range(lost)), guesses=cells)

    monkeypatch.setattr(decode, "read_matrix", every_other_row_short)
    assert decode_levelled(crop) == payload
    assert steps == [2, 1]
    steps.clear()
    lost = 200
    assert decode_levelled(crop) is None
    assert 1 not in steps
