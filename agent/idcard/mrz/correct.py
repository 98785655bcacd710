"""Turn per-character scores into MRZ text that passes every ICAO check digit, or into nothing.

Each position has a character class (digits in dates, letters in names, ``M/F/<`` for sex...),
which alone fixes most OCR confusions (0/O, 1/I, 5/S, 8/B, 2/Z). Where a check digit still
fails, single substitutions among the close runner-ups of the field's cells are tried; the fix
is taken only when it is the one clear cheapest way to satisfy the check, and the composite
check digit, which covers every checked field again, must then hold too. Fields no check digit
covers (issuing state, sex) need a clear winner. Anything less gives no read: the next frame
comes within 50 ms, a wrong person would stay in the registry.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent.idcard.mrz.glyphs import ALPHABET
import re

from agent.idcard.parsers.mrz import COUNTRIES, check_digit

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALNUM = DIGITS + LETTERS
MAX_GAP = 0.25  # a runner-up this far below the top score is not a plausible misread
AMBIGUOUS = 0.04  # two fixes closer than this in cost: refuse
MIN_MARGIN = 0.08  # uncovered fields (state, sex): the winner must lead by this much
MIN_CELL_SCORE = 0.35  # a cell this unlike every glyph is a smudge or glare: no read
# Every line must fit OCR-B this well on average (correct reads on both MRZ corpora: >= 0.77). A
# line read with its cells misplaced (perspective, glare) averages ~0.65 and yields garbage;
# in optional data only the composite check digit covers it, which garbage passes 1 time in 10.
MIN_LINE_MEAN = 0.7
# A cell whose best allowed character fits worse than this is in doubt. One mod-10 check digit
# can settle one doubtful cell of its field, not two: two misplaced cells of a birth date
# (750106 read 651106) passed their check digit and the composite on the spec corpus. Correct
# reads on its seeds 1-4 (510) never have two such cells in one field.
WEAK_CELL = 0.55
NAMES_RE = re.compile(r"^[A-Z]+(<[A-Z]+)*(<<[A-Z]+(<[A-Z]+)*)?<*$")  # SURNAMES<<GIVEN<NAMES<<<

Pos = tuple[int, int]  # (line, column)


@dataclass(frozen=True)
class Layout:
    lines: int
    width: int
    classes: dict[Pos, str]  # allowed characters per position (default: ALNUM + '<')
    checks: tuple[tuple[tuple[Pos, ...], Pos], ...]  # (field positions, check digit position), composite last
    state: tuple[Pos, Pos, Pos]
    sex: Pos
    states: tuple[str, ...]  # issuing states accepted for this layout
    names: tuple[int, int, int]  # line, start, stop of SURNAMES<<GIVEN<NAMES
    # Cells where letters and digits are both allowed: the class must be clear from the glyph
    # itself (see ``_decide_class``), so a check digit never arbitrates between O and 0.
    mixed: tuple[Pos, ...] = ()
    # A cell that is a digit on most states' documents but may be a letter on some: digits and
    # filler only unless the issuing state is in ``lead_letter_states``, and then "mixed".
    lead: Pos | None = None
    lead_letter_states: tuple[str, ...] = ()


def _span(line: int, start: int, stop: int) -> tuple[Pos, ...]:
    return tuple((line, c) for c in range(start, stop))


def _classes(spec: list[tuple[tuple[Pos, ...], str]]) -> dict[Pos, str]:
    out: dict[Pos, str] = {}
    for positions, chars in spec:
        for pos in positions:
            out[pos] = chars
    return out


# Document numbers and optional data hold digits on the cards served (CL: a letter may start a
# 2025 serial; RUN check 'K'). Letting O/I/S/B compete there would let pairs of misreads whose
# check-digit weights add up to 10 (7+3) pass the check: '0974' read 'O97O' does.
NUMBERS = DIGITS + "<"
TD1 = Layout(3, 30, _classes([
    (_span(0, 0, 1), "ACI"), (_span(0, 1, 2), LETTERS + "<"), (_span(0, 2, 5), LETTERS),
    (_span(0, 5, 6), ALNUM + "<"), (_span(0, 6, 14), NUMBERS), (_span(0, 15, 30), NUMBERS),
    (_span(1, 18, 29), NUMBERS + "K"),
    (_span(0, 14, 15), DIGITS), (_span(1, 0, 7), DIGITS), (_span(1, 7, 8), "MFX<"), (_span(1, 8, 15), DIGITS),
    (_span(1, 15, 18), LETTERS + "<"), (_span(1, 29, 30), DIGITS), (_span(2, 0, 30), LETTERS + "<"),
]), (
    (_span(0, 5, 14), (0, 14)), (_span(1, 0, 6), (1, 6)), (_span(1, 8, 14), (1, 14)),
    (_span(0, 5, 30) + _span(1, 0, 7) + _span(1, 8, 15) + _span(1, 18, 29), (1, 29)),
), ((0, 2), (0, 3), (0, 4)), (1, 7), ("COL", "CHL", "ARG", "PER"), (2, 0, 30), lead=(0, 5),
    # Only a Chilean serial may start with a letter (2025 cards). Elsewhere the cell is the first
    # digit of a serial or DNI, and letting letters compete there let a misread '0' become 'U':
    # U (30), A (10) and K (20) weigh the same as 0 in every check digit, so no check tells them
    # apart (the "0/O/U tie"). On a Chilean card the glyph must settle the class (``_decide_class``).
    lead_letter_states=("CHL",))

# A passport number is any of A-Z, 0-9 and '<' in all nine cells (ICAO 9303-4): every cell
# is "mixed", its letter-or-digit class decided by the glyph, not by the check digit.
TD3 = Layout(2, 44, _classes([
    (_span(1, 0, 9), ALNUM + "<"), (_span(1, 28, 42), NUMBERS),
    (_span(0, 0, 1), "P"), (_span(0, 1, 2), LETTERS + "<"), (_span(0, 2, 5), LETTERS),
    (_span(0, 5, 44), LETTERS + "<"), (_span(1, 9, 10), DIGITS), (_span(1, 10, 13), LETTERS + "<"),
    (_span(1, 13, 20), DIGITS), (_span(1, 20, 21), "MFX<"), (_span(1, 21, 28), DIGITS),
    (_span(1, 42, 43), DIGITS + "<"), (_span(1, 43, 44), DIGITS),
]), (
    (_span(1, 0, 9), (1, 9)), (_span(1, 13, 19), (1, 19)), (_span(1, 21, 27), (1, 27)),
    (_span(1, 0, 10) + _span(1, 13, 20) + _span(1, 21, 43), (1, 43)),
), ((0, 2), (0, 3), (0, 4)), (1, 20), tuple(COUNTRIES), (0, 5, 44), mixed=_span(1, 0, 9))

_INDEX = {c: i for i, c in enumerate(ALPHABET)}


class Unreadable(Exception):
    """The scores do not give an MRZ that validates; ``reason`` is a stable code for diagnostics."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _allowed_scores(scores: np.ndarray, layout: Layout, pos: Pos) -> list[tuple[float, str]]:
    chars = layout.classes.get(pos, ALNUM + "<")
    row = scores[pos[0]][pos[1]]
    ranked = {c: float(row[_INDEX[c]]) for c in chars}
    if "0" in ranked and "O" not in ranked:
        # A cell that can only be a digit: an O-shaped glyph there is a zero. In dim, noisy
        # frames at 14-16 px a printed 0 fits the O template best and, among digits, '6' a
        # little better than '0' (spec seed 2 frame 127: O 0.87, 6 0.70, 0 0.67).
        ranked["0"] = max(ranked["0"], float(row[_INDEX["O"]]))
    return sorted(((score, c) for c, score in ranked.items()), reverse=True)


def _decide_class(ranked: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """A mixed cell's candidates, kept to the class of its best glyph (letters, or digits and
    filler) when that class leads the other by ``MIN_MARGIN``; else no read.

    With both classes open, two misreads whose check-digit weights add up to 10 (O/0 at weights
    7 and 3) pass the check; OCR-B draws O and 0, I and 1, B and 8, S and 5 differently, so a
    clean read has a clear class, and the check digit then only fixes within it."""
    top_char = ranked[0][1]
    group = LETTERS if top_char in LETTERS else NUMBERS
    other = next((score for score, char in ranked if char not in group), None)
    if other is not None and ranked[0][0] - other < MIN_MARGIN:
        raise Unreadable("character_class")
    return [(score, char) for score, char in ranked if char in group]


def _fix_check(text: list[list[str]], ranked: dict[Pos, list[tuple[float, str]]],
               field: tuple[Pos, ...], check: Pos, mutable: tuple[Pos, ...] | None = None) -> None:
    """Make ``check`` hold over ``field`` with at most one substitution in ``mutable`` (default:
    the field and its check digit), or raise Unreadable."""
    def value(positions: tuple[Pos, ...]) -> str:
        return "".join(text[l][c] for l, c in positions)

    if check_digit(value(field)) == text[check[0]][check[1]]:
        return
    fixes: list[tuple[float, Pos, str]] = []
    for pos in mutable if mutable is not None else field + (check,):
        top = ranked[pos][0][0]
        original = text[pos[0]][pos[1]]
        for score, char in ranked[pos][1:]:
            if top - score > MAX_GAP:
                break
            text[pos[0]][pos[1]] = char
            if check_digit(value(field)) == text[check[0]][check[1]]:
                fixes.append((top - score, pos, char))
            text[pos[0]][pos[1]] = original
    if not fixes:
        raise Unreadable("check_digit")
    fixes.sort()
    if len(fixes) > 1 and fixes[1][0] - fixes[0][0] < AMBIGUOUS:
        raise Unreadable("ambiguous_correction")
    _, (line, col), char = fixes[0]
    text[line][col] = char


def _state(scores: np.ndarray, layout: Layout) -> str:
    """The served issuing state the three cells look most like, if it clearly wins."""
    totals = sorted(((sum(float(scores[l][c][_INDEX[ch]]) for (l, c), ch in zip(layout.state, code)), code)
                     for code in layout.states), reverse=True)
    if totals[0][0] - totals[1][0] < MIN_MARGIN:
        raise Unreadable("issuing_state")
    return totals[0][1]


def _checked(layout: Layout) -> frozenset[Pos]:
    """Every position some check digit covers (the check digits included)."""
    return frozenset(pos for field, check in layout.checks for pos in field + (check,))


def _at_most_one_doubt(ranked: dict[Pos, list[tuple[float, str]]], layout: Layout) -> None:
    """No read when a check digit would have to vouch for two doubtful cells (``WEAK_CELL``): each
    field with its own check digit, and the cells only the composite covers."""
    *simple, (composite, composite_check) = layout.checks
    covered: set[Pos] = set()
    groups = []
    for field, check in simple:
        groups.append(field + (check,))
        covered.update(field + (check,))
    groups.append(tuple(p for p in composite + (composite_check,) if p not in covered))
    for cells in groups:
        if sum(ranked[pos][0][0] < WEAK_CELL for pos in cells) > 1:
            raise Unreadable("doubtful_cells")


def correct(scores: np.ndarray, layout: Layout) -> str:
    """Validated MRZ text (lines joined by newlines) from (lines, width, len(ALPHABET)) scores."""
    # A smudged cell (glare) where no check digit reaches (names, nationality, state, sex) is no
    # read; under a check digit it is one doubtful cell that check may settle
    # (``_at_most_one_doubt``).
    best, checked = scores.max(axis=2), _checked(layout)
    if any(best[pos] < MIN_CELL_SCORE for pos in np.ndindex(*best.shape) if pos not in checked):
        raise Unreadable("smudged_cell")
    if float(scores.max(axis=2).mean(axis=1).min()) < MIN_LINE_MEAN:
        raise Unreadable("line_unclear")
    ranked = {(l, c): _allowed_scores(scores, layout, (l, c)) for l in range(layout.lines) for c in range(layout.width)}
    for pos in layout.mixed:
        ranked[pos] = _decide_class(ranked[pos])
    state = _state(scores, layout)
    if layout.lead is not None:
        lead = ranked[layout.lead]
        ranked[layout.lead] = (_decide_class(lead) if state in layout.lead_letter_states
                               else [(score, char) for score, char in lead if char in NUMBERS])
    _at_most_one_doubt(ranked, layout)
    text = [[ranked[(l, c)][0][1] for c in range(layout.width)] for l in range(layout.lines)]
    line, start, stop = layout.names
    if not NAMES_RE.match("".join(text[line][start:stop])):
        raise Unreadable("names_shape")
    sex = ranked[layout.sex]
    if sex[0][0] - sex[1][0] < MIN_MARGIN:
        raise Unreadable("sex")
    for (line, col), char in zip(layout.state, state):
        text[line][col] = char
    *simple, composite = layout.checks
    for field, check in simple:
        _fix_check(text, ranked, field, check)
    # Only the positions the composite alone covers may change now: the others just passed
    # their own check, and a change there would break it.
    covered = {pos for field, check in simple for pos in field + (check,)}
    field, check = composite
    _fix_check(text, ranked, field, check, tuple(p for p in field + (check,) if p not in covered))
    if check_digit("".join(text[l][c] for l, c in field)) != text[check[0]][check[1]]:
        raise Unreadable("composite")
    return "\n".join("".join(line) for line in text)
