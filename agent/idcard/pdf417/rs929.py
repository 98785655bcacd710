"""Reed-Solomon over GF(929) with errors *and* erasures, for PDF417's error correction.

zxing-cpp's PDF417 decoder ignores erasures (its erasure handling is commented out), so a
codeword hidden by glare costs it as much as a wrong one. Here each erased codeword costs one
EC codeword and each wrong one two: ``2 * errors + erasures <= ec_count - 2``. The two kept
back are the specification's detection reserve (ISO/IEC 15438, 4.10): a word beyond capacity
must come out as a refusal, not as someone else's ID.

Conventions as the encoder's: codeword ``i`` of ``n`` is the coefficient of x^(n-1-i), the
generator's roots are 3^1..3^k, so a valid word has zero syndromes S_1..S_k.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

P = 929
_EXP = [1] * (P - 1)
for _i in range(1, P - 1):
    _EXP[_i] = _EXP[_i - 1] * 3 % P
_LOG = [0] * P
for _i, _v in enumerate(_EXP):
    _LOG[_v] = _i
DETECTION_RESERVE = 2


def _inv(a: int) -> int:
    return _EXP[(P - 1 - _LOG[a]) % (P - 1)]


def _poly_eval(coeffs: Sequence[int], xs: np.ndarray) -> np.ndarray:
    """Polynomial (lowest degree first) at every point of ``xs``, mod 929 (Horner, vectorised)."""
    acc = np.zeros(xs.shape, np.int64)
    for c in reversed(coeffs):
        acc = (acc * xs + c) % P
    return acc


def syndromes(word: Sequence[int], k: int) -> list[int]:
    """S_1..S_k: the received polynomial at 3^1..3^k."""
    n = len(word)
    exps = (np.arange(1, k + 1)[:, None] * np.arange(n - 1, -1, -1)[None, :]) % (P - 1)
    powers = np.asarray(_EXP, np.int64)[exps]
    return [int(s) for s in (powers * np.asarray(word, np.int64)[None, :] % P).sum(axis=1) % P]


def _mul(a: list[int], b: list[int]) -> list[int]:
    out = [0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        if x:
            for j, y in enumerate(b):
                out[i + j] = (out[i + j] + x * y) % P
    return out


def _berlekamp_massey(synd: list[int], gamma: list[int], erasures: int) -> tuple[list[int], int]:
    """The errata locator from the syndromes, started from the erasure locator ``gamma``
    (Blahut's errors-and-erasures form); returns it and its expected degree."""
    lam, prev, length = list(gamma), list(gamma), erasures
    for r in range(erasures + 1, len(synd) + 1):
        delta = 0
        for i in range(min(len(lam), r)):
            delta = (delta + lam[i] * synd[r - 1 - i]) % P
        shifted = [0] + prev
        if delta == 0:
            prev = shifted
            continue
        size = max(len(lam), len(shifted))
        new = [((lam[i] if i < len(lam) else 0) - delta * (shifted[i] if i < len(shifted) else 0)) % P
               for i in range(size)]
        if 2 * length <= r - 1 + erasures:
            inv = _inv(delta)
            prev = [c * inv % P for c in lam]
            length = r + erasures - length
        else:
            prev = shifted
        lam = new
    while len(lam) > 1 and lam[-1] == 0:
        lam.pop()
    return lam, length


def correct(word: Sequence[int], ec_count: int, erasures: Sequence[int] = ()) -> list[int] | None:
    """The corrected codewords, or ``None`` when the errata are beyond what ``ec_count`` EC
    codewords correct with the detection reserve kept (or the word is inconsistent)."""
    n = len(word)
    received = [0 if i in set(erasures) else int(v) % P for i, v in enumerate(word)]
    erased = sorted(set(erasures))
    if len(erased) > ec_count - DETECTION_RESERVE or n > P - 1:
        return None
    synd = syndromes(received, ec_count)
    if not any(synd):
        return received
    gamma = [1]
    for i in erased:
        gamma = _mul(gamma, [1, (-_EXP[(n - 1 - i) % (P - 1)]) % P])
    lam, length = _berlekamp_massey(synd, gamma, len(erased))
    degree = len(lam) - 1
    errors = degree - len(erased)
    if degree != length or errors < 0 or 2 * errors + len(erased) > ec_count - DETECTION_RESERVE:
        return None
    positions = _roots(lam, n)
    if len(positions) != degree:
        return None
    return _apply(received, synd, lam, positions, ec_count)


def _roots(lam: list[int], n: int) -> list[int]:
    """Positions i whose locator X_i = 3^(n-1-i) has Λ(X_i^-1) = 0 (Chien search, vectorised)."""
    exps = (-(n - 1 - np.arange(n))) % (P - 1)
    values = _poly_eval(lam, np.asarray(_EXP, np.int64)[exps])
    return [int(i) for i in np.flatnonzero(values == 0)]


def _apply(received: list[int], synd: list[int], lam: list[int], positions: list[int],
           ec_count: int) -> list[int] | None:
    """Forney's error values subtracted at ``positions``; ``None`` unless the result checks."""
    n = len(received)
    omega = _mul(synd, lam)[:ec_count]
    deriv = [i * lam[i] % P for i in range(1, len(lam))]
    out = list(received)
    for i in positions:
        x_inv = _EXP[(-(n - 1 - i)) % (P - 1)]
        den = int(_poly_eval(deriv, np.asarray([x_inv]))[0])
        if den == 0:
            return None
        value = (-int(_poly_eval(omega, np.asarray([x_inv]))[0]) * _inv(den)) % P
        out[i] = (out[i] - value) % P
    return out if not any(syndromes(out, ec_count)) else None
