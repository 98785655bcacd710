"""PDF417 data codewords -> bytes: text compaction (four submodes, latches and shifts), byte
compaction (901, 924, 913) and numeric compaction (902), as zxing-cpp returns them (raw bytes,
so the same parsers and ``accept`` see the same thing whichever decoder read the symbol).

The text submodes' character values come from pdf417gen's encoder table, inverted, rather than
typed again here. Anything this decoder does not handle (macro PDF417, reader initialisation,
an unknown mode) is a refusal: ``None``, never a guess.
"""
from __future__ import annotations

from functools import lru_cache

TEXT, BYTE, BYTE_6, BYTE_SHIFT, NUMERIC = 900, 901, 924, 913, 902
ECI_1ARG, ECI_2ARG = (927, 925), 926
_ALPHA, _LOWER, _MIXED, _PUNCT = "UPPER", "LOWER", "MIXED", "PUNCT"


@lru_cache(maxsize=1)
def _characters() -> dict[tuple[str, int], int]:
    """(submode, value) -> byte, from pdf417gen's encoder table (char -> {submode: value})."""
    from pdf417gen.data import CHARACTERS_LOOKUP

    return {(mode, value): char for char, modes in CHARACTERS_LOOKUP.items() for mode, value in modes.items()}


# Latches (L) and shifts (S) among the text submodes, by submode and value (ISO/IEC 15438 5.4.1).
_LATCH = {(_ALPHA, 27): _LOWER, (_ALPHA, 28): _MIXED, (_LOWER, 28): _MIXED, (_MIXED, 25): _PUNCT,
          (_MIXED, 27): _LOWER, (_MIXED, 28): _ALPHA, (_PUNCT, 29): _ALPHA}
_SHIFT = {(_ALPHA, 29): _PUNCT, (_LOWER, 27): _ALPHA, (_LOWER, 29): _PUNCT, (_MIXED, 29): _PUNCT}


def _text(values: list[int], out: bytearray) -> None:
    """Text compaction values (two per codeword) appended to ``out`` as bytes; a value of 913
    in the list is the byte shift's payload marker (see :func:`_split_text`)."""
    table = _characters()
    mode, shift = _ALPHA, None
    index = 0
    while index < len(values):
        value = values[index]
        index += 1
        if value >= 1000:  # a byte shifted in with 913
            out.append(value - 1000)
            continue
        current = shift or mode
        shift = None
        if (current, value) in _LATCH:
            mode = _LATCH[(current, value)]
        elif (current, value) in _SHIFT:
            shift = _SHIFT[(current, value)]
        elif (current, value) in table:
            out.append(table[(current, value)])
        # else: a trailing PS used as padding, or an unused value: nothing


def _text_values(codewords: list[int], start: int) -> tuple[list[int], int]:
    """The submode values of a text segment from ``start``, up to the next latch; a 913 byte
    shift's byte is kept in place (as 1000 + byte). Returns the values and where it ended."""
    values: list[int] = []
    index = start
    while index < len(codewords):
        cw = codewords[index]
        if cw == BYTE_SHIFT and index + 1 < len(codewords):
            values.append(1000 + codewords[index + 1] % 256)
            index += 2
            continue
        if cw >= 900:
            break
        values.extend((cw // 30, cw % 30))
        index += 1
    return values, index


def _bytes(codewords: list[int], start: int, six: bool, out: bytearray) -> int | None:
    """Byte compaction from ``start``: groups of five codewords are six bytes; with 901 the last
    one to five codewords are one byte each. Returns where the segment ended."""
    end = start
    while end < len(codewords) and codewords[end] < 900:
        end += 1
    words = codewords[start:end]
    tail = 0 if six else (len(words) % 5 or (5 if words else 0))
    if six and len(words) % 5:
        return None
    for group in range(0, len(words) - tail, 5):
        value = 0
        for cw in words[group:group + 5]:
            value = value * 900 + cw
        if value >= 1 << 48:
            return None
        out.extend(value.to_bytes(6, "big"))
    for cw in words[len(words) - tail:]:
        if cw > 255:
            return None
        out.append(cw)
    return end


def _numeric(codewords: list[int], start: int, out: bytearray) -> int | None:
    """Numeric compaction: groups of up to 15 codewords, base 900, a leading 1 stripped."""
    end = start
    while end < len(codewords) and codewords[end] < 900:
        end += 1
    for group in range(start, end, 15):
        value = 0
        for cw in codewords[group:min(group + 15, end)]:
            value = value * 900 + cw
        digits = str(value)
        if not digits.startswith("1"):
            return None
        out.extend(digits[1:].encode())
    return end


def decode(data: list[int]) -> bytes | None:
    """The data codewords (length descriptor first, as after error correction) as bytes."""
    if not data or data[0] != len(data) or len(data) < 2:
        return None
    codewords = data[1:]
    out = bytearray()
    index, mode = 0, TEXT
    while index < len(codewords):
        cw = codewords[index]
        if cw in (TEXT, BYTE, BYTE_6, NUMERIC):
            mode, index = cw, index + 1
        elif cw in ECI_1ARG:
            index += 2
            continue
        elif cw == ECI_2ARG:
            index += 3
            continue
        elif cw >= 900 and cw != BYTE_SHIFT:
            return None  # macro PDF417, reader initialisation: not an ID card's symbol
        if mode == TEXT:
            values, index = _text_values(codewords, index)
            _text(values, out)
            if index < len(codewords) and codewords[index] >= 900 and codewords[index] not in (
                    TEXT, BYTE, BYTE_6, NUMERIC, *ECI_1ARG, ECI_2ARG):
                return None
            continue
        end = _numeric(codewords, index, out) if mode == NUMERIC else _bytes(codewords, index, mode == BYTE_6, out)
        if end is None:
            return None
        index, mode = end, TEXT
    return bytes(out)
