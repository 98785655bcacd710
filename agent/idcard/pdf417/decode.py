"""Fallback PDF417 decoder for a located symbol zxing-cpp could not read: the codewords sampled
with erasures (:mod:`.sampler`), erasure-aware Reed-Solomon (:mod:`.rs929`), then the
high-level decoder (:mod:`.highlevel`). Any doubt is a refusal (``None``): the caller still
passes the bytes through the same parsers and ``accept`` as a zxing-cpp read.
"""
from __future__ import annotations

import numpy as np

from agent.idcard.pdf417 import highlevel, rs929, runs
from agent.idcard.pdf417.sampler import Matrix, read_matrix


def codewords_of(matrix: Matrix) -> list[int] | None:
    """The symbol's data codewords (length descriptor first), error-corrected, or ``None``."""
    ec_count = matrix.ec_count
    if ec_count >= len(matrix.codewords):
        return None
    fixed = rs929.correct([max(0, v) for v in matrix.codewords], ec_count, matrix.erasures)
    if fixed is None and matrix.guesses is not None and matrix.guesses != matrix.codewords:
        # The clear votes failed: each cell's best guess instead (one scanline, or a plurality),
        # erasures only where no scanline read the cell or the best two tie.
        fixed = rs929.correct([max(0, v) for v in matrix.guesses], ec_count,
                              [i for i, v in enumerate(matrix.guesses) if v < 0])
    if fixed is None:
        return None
    data = fixed[:len(fixed) - ec_count]
    return data if data[0] == len(data) else None


def _near_capacity(matrix: Matrix) -> bool:
    """Whether the cells left without even a guess are within twice what error correction
    restores: the symbol is nearly read, and every pixel row (instead of every other) may give
    the votes it lacks."""
    empty = sum(v < 0 for v in (matrix.guesses or matrix.codewords))
    return empty <= 2 * (matrix.ec_count - rs929.DETECTION_RESERVE)


def decode_levelled(crop: np.ndarray) -> bytes | None:
    """Bytes of the PDF417 symbol in ``crop`` (bars vertical, either way up), or ``None``. A
    symbol nearly read from every other pixel row is read again from all of them."""
    window = max(15, crop.shape[1] // 10)
    edges = runs.edges_of(crop, window)
    dense: runs.Edges | None = None  # every pixel row: made once, only for a nearly read symbol
    for flip in (False, True):
        image = crop[::-1, ::-1] if flip else crop
        matrix = read_matrix(edges.flipped() if flip else edges, image)
        if matrix is None:
            continue
        data = codewords_of(matrix)
        if data is None and _near_capacity(matrix):
            dense = dense if dense is not None else runs.edges_of(crop, window, step=1)
            again = read_matrix(dense.flipped() if flip else dense, image)
            data = None if again is None else codewords_of(again)
        if data is not None:
            return highlevel.decode(data)
    return None
