"""MRZ OCR on real OpenCV processing of synthetic camera frames (OCR-B drawn from fonts-ocr-b),
the check-digit corrector on constructed scores (fuzzed), and the capture flow with an MRZ card."""
from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.idcard.config import IdCardSettings
from agent.idcard.decode_files import run_decode
from agent.idcard.errors import IdCardError
from agent.idcard.frame_reader import MRZ_UNREADABLE_EN, MRZ_UNREADABLE_ES, FrameReader
from agent.idcard.mrz.correct import MAX_GAP, TD1, TD3, Unreadable, correct
from agent.idcard.mrz.glyphs import ALPHABET, glyph_set
from agent.idcard.mrz.reader import read_mrz
from agent.idcard.parsers import parse_any
from agent.idcard.pipeline import DecodePipeline
from agent.idcard.samples import SyntheticPerson, td1_mrz, td3_mrz
from agent.idcard.service import IdCardService
from agent.idcard.synthetic_mrz_frames import make_mrz_frame
from agent.idcard.vault import ImageVault
from tests.fakes.camera import FakeCamera

EASY = dict(tilt=0.03, light=0.9, glare=0, blur=0.5, noise=2, quality=90)
KEY = ("country", "document_type", "document_number", "birth_date", "expiry", "sex")


def _gray(frame) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)


def _key(doc) -> dict:
    return {k: getattr(doc, k) for k in KEY}


def test_templates_cover_the_mrz_alphabet_from_the_installed_font() -> None:
    glyphs = glyph_set()
    assert glyphs.images.shape[0] == len(ALPHABET) == 37
    # Every glyph differs from every other (no empty or duplicate rendering).
    similarity = glyphs.vectors @ glyphs.vectors.T
    assert np.all(similarity[~np.eye(37, dtype=bool)] < 0.95)


@pytest.mark.parametrize("kind,angle,char_px", [("co_digital", 0, 24), ("cl_mrz", 180, 30), ("ar_mrz", 95, 18),
                                                ("pe_mrz", 300, 36), ("co_digital", 33, 15)])
def test_reads_the_mrz_at_any_angle_and_size(kind: str, angle: float, char_px: float) -> None:
    frame = make_mrz_frame(random.Random(int(angle) + 1), kind, angle=angle, char_px=char_px, **EASY)
    attempt = read_mrz(_gray(frame))
    assert attempt.text is not None, attempt.reasons
    assert _key(parse_any(attempt.text.encode(), "MRZ")) == _key(parse_any(frame.mrz, "MRZ"))


def test_card_without_mrz_gives_no_text_and_no_zone() -> None:
    attempt = read_mrz(_gray(make_mrz_frame(random.Random(3), "no_mrz", angle=10, char_px=25, **EASY)))
    assert attempt.text is None and not attempt.zone_seen


def test_cedula_digital_with_its_opaque_qr_enrolls_from_the_mrz() -> None:
    frame = make_mrz_frame(random.Random(8), "co_digital", angle=12, char_px=22, **EASY)
    result = FrameReader(DecodePipeline()).read(_gray(frame))
    assert result.source == "MRZ" and result.document is not None
    assert result.document.card_type == "CEDULA_DIGITAL"
    assert result.document.document_number == frame.person.number


# --- the corrector, on constructed scores ----------------------------------------------------

_INDEX = {c: i for i, c in enumerate(ALPHABET)}


def _scores(text: str, width: int) -> np.ndarray:
    lines = text.split("\n")
    scores = np.full((len(lines), width, len(ALPHABET)), 0.3, np.float32)
    for l, line in enumerate(lines):
        for c, char in enumerate(line):
            scores[l, c, _INDEX[char]] = 0.9
    return scores


PERSON = SyntheticPerson("CO", "1047425328", "ANA", None, "GIL", None, "F", "1990-08-22", None)
TRUE_TD1 = td1_mrz(PERSON).decode()


def test_clean_scores_give_the_text() -> None:
    assert correct(_scores(TRUE_TD1, 30), TD1) == TRUE_TD1


def test_letter_digit_confusions_are_fixed_by_the_position_class() -> None:
    scores = _scores(TRUE_TD1, 30)
    scores[1, 0, _INDEX["O"]] = 0.95  # birth date digit '9' ... read as 'O' would be a letter in a date
    scores[2, 0, _INDEX["6"]] = 0.95  # a digit in the names line
    assert correct(scores, TD1) == TRUE_TD1


def test_one_misread_digit_is_fixed_by_its_check_digit() -> None:
    scores = _scores(TRUE_TD1, 30)
    scores[1, 3, _INDEX["3"]] = 0.92  # '8' of 900822 misread as '3', the true '8' close behind
    scores[1, 3, _INDEX["8"]] = 0.85
    assert correct(scores, TD1) == TRUE_TD1


def test_a_misread_far_below_any_alternative_is_no_read() -> None:
    scores = _scores(TRUE_TD1, 30)
    scores[1, 3, _INDEX["3"]] = 0.95
    scores[1, 3, _INDEX["8"]] = 0.95 - MAX_GAP - 0.05
    with pytest.raises(Unreadable):
        correct(scores, TD1)


def test_two_equally_good_fixes_are_no_read() -> None:
    scores = _scores(TRUE_TD1, 30)
    scores[1, 3, _INDEX["3"]] = 0.92
    scores[1, 3, _INDEX["8"]] = 0.85
    text = TRUE_TD1.split("\n")
    # Another cell of the same field with a runner-up that also satisfies the check, as close.
    from agent.idcard.parsers.mrz import check_digit
    for char in "0123456789":
        candidate = text[1][:3] + "3" + text[1][4] + char + text[1][6:]
        if char != text[1][5] and check_digit(candidate[0:6]) == candidate[6]:
            scores[1, 5, _INDEX[char]] = 0.85
            break
    with pytest.raises(Unreadable) as err:
        correct(scores, TD1)
    assert err.value.reason == "ambiguous_correction"


def test_a_line_fitting_ocr_b_poorly_is_no_read_even_when_its_checks_pass() -> None:
    """Misplaced cells give garbage that the composite check digit alone lets through 1 time in
    10: a whole line fitting the glyphs this poorly is refused, whatever its checks say."""
    scores = _scores(TRUE_TD1, 30)
    scores[2] = np.where(scores[2] > 0.5, 0.66, 0.3)  # the names line: right glyphs, poor fits
    with pytest.raises(Unreadable) as err:
        correct(scores, TD1)
    assert err.value.reason == "line_unclear"


def test_unclear_sex_or_state_is_no_read() -> None:
    scores = _scores(TRUE_TD1, 30)
    scores[1, 7, _INDEX["M"]] = 0.88  # F 0.90 vs M 0.88
    with pytest.raises(Unreadable) as err:
        correct(scores, TD1)
    assert err.value.reason == "sex"
    scores = _scores(TRUE_TD1, 30)
    scores[0, 3, _INDEX["H"]] = 0.9  # COL or CHL?
    with pytest.raises(Unreadable) as err:
        correct(scores, TD1)
    assert err.value.reason == "issuing_state"


def test_td3_passport_scores() -> None:
    passport = SyntheticPerson("PE", "AB1234567", "ROSA", None, "QUISPE", None, "F", "1988-11-30", None)
    text = td3_mrz(passport).decode()
    assert correct(_scores(text, 44), TD3) == text


FUZZ_PEOPLE = [PERSON, SyntheticPerson("CL", "8123468-K", "LUIS", None, "SOTO", None, "M", "1975-02-03", None),
               SyntheticPerson("AR", "23456789", "JUAN", None, "PAZ", "GIL", "M", "1985-03-04", None)]


# Positions each check digit covers (the composite's own: the optional data holding the NUIP/RUN).
# Sex and issuing state have none: a confident misread there is undetectable by any corrector,
# which is why they need a clear winner (tested above).
GROUPS = [[(0, c) for c in range(5, 15)], [(1, c) for c in range(0, 7)], [(1, c) for c in range(8, 15)],
          [(0, c) for c in range(15, 30)] + [(1, c) for c in range(18, 30)]]


@st.composite
def _one_misread_per_check(draw):
    """At most one misread per check digit: what a mod-10 check can correct. (Two misreads under
    one check digit cancel out one time in ten whatever the corrector does; the camera's next
    frames are the defence there, and the benchmark counts false reads on the corpus.)"""
    return [(draw(st.sampled_from(group)), draw(st.sampled_from(ALPHABET)), draw(st.floats(0.0, 0.3)),
             draw(st.floats(0.0, 0.3))) for group in GROUPS if draw(st.booleans())]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(FUZZ_PEOPLE), _one_misread_per_check(), st.integers(0, 2 ** 32 - 1))
def test_fuzz_corrector_never_gives_a_wrong_person(person, misreads, seed) -> None:
    """Misreads in checked fields (a wrong character on top, the true one somewhere below) plus
    noise everywhere: the corrector answers the true key fields or nothing."""
    truth = td1_mrz(person).decode()
    scores = _scores(truth, 30) + np.random.default_rng(seed).uniform(-0.08, 0.08, (3, 30, 37)).astype(np.float32)
    for (line, col), char, lead, drop in misreads:
        true_char = truth.split("\n")[line][col]
        if char == true_char:
            continue
        scores[line, col, _INDEX[char]] = 0.9 + lead
        scores[line, col, _INDEX[true_char]] = 0.9 - drop
    try:
        text = correct(scores, TD1)
    except Unreadable:
        return
    try:
        doc = parse_any(text.encode(), "MRZ")
    except IdCardError:
        return
    assert _key(doc) == _key(parse_any(truth.encode(), "MRZ"))


# --- the capture flow ---------------------------------------------------------------------------

def _service(tmp_path: Path, frames: list[bytes]) -> IdCardService:
    vault = ImageVault(tmp_path / "img", b"k" * 32)
    return IdCardService(IdCardSettings(enabled=True, capture_timeout_s=20), vault,
                         lambda: FakeCamera(list(frames)))


def test_capture_reads_a_cedula_digital_like_the_old_one(tmp_path: Path) -> None:
    frame = make_mrz_frame(random.Random(21), "co_digital", angle=200, char_px=26, **EASY)
    service = _service(tmp_path, [frame.jpeg])
    session = service.read_document(service.start_capture())
    assert session.status == "read" and session.symbology == "MRZ"
    doc = session.document
    assert (doc.country, doc.document_type, doc.document_number) == ("CO", "CC", frame.person.number)
    assert session.to_dict()["document"]["card_type"] == "CEDULA_DIGITAL"


def test_recognised_but_unreadable_mrz_gets_its_own_message(tmp_path: Path) -> None:
    """The zone is in view but too blurred to validate: not `not_an_id_document`."""
    frame = make_mrz_frame(random.Random(5), "co_digital", angle=5, char_px=16, tilt=0.02, light=0.9, glare=0,
                           blur=2.6, noise=6, quality=60)
    assert read_mrz(_gray(frame)).zone_seen and read_mrz(_gray(frame)).text is None
    service = _service(tmp_path, [frame.jpeg])
    session = service.read_document(service.start_capture())
    assert session.status == "mrz_unreadable" and session.warnings == ["mrz_unreadable"]
    assert session.message == MRZ_UNREADABLE_ES and session.document is None
    # The API answers in English on request (Accept-Language: en picks the language).
    assert session.to_dict("en")["message"] == MRZ_UNREADABLE_EN != session.to_dict("es")["message"]


def test_cli_decode_reads_an_mrz_image(tmp_path: Path, capsys) -> None:
    import io
    import json

    frame = make_mrz_frame(random.Random(4), "cl_mrz", angle=80, char_px=28, **EASY)
    path = tmp_path / "back.jpg"
    path.write_bytes(frame.jpeg)
    out = io.StringIO()
    assert run_decode([str(path)], True, 300.0, out) == 0
    record = json.loads(out.getvalue())
    assert record["format"] == "MRZ" and record["document"]["document_type"] == "RUT"
    assert record["document"]["document_number"] == frame.person.number


def test_without_the_ocr_b_font_barcodes_still_read_and_mrz_is_switched_off(monkeypatch, caplog) -> None:
    from agent.idcard.mrz import glyphs
    from agent.idcard.synthetic_frames import make_frame

    mrz_frame = make_mrz_frame(random.Random(2), "ar_mrz", angle=0, char_px=25, **EASY)  # drawn with the font
    monkeypatch.setattr(glyphs, "FONT_PATHS", (Path("/nonexistent/OCRB.otf"),))
    glyphs.glyph_set.cache_clear()
    try:
        reader = FrameReader(DecodePipeline())
        assert reader.read(_gray(mrz_frame)).document is None and reader.mrz is False
        assert "fonts-ocr-b" in caplog.text
        card = make_frame(random.Random(1), "co_cedula", angle=20, tilt=0.02, light=0.9, glare=0, blur=0.4, noise=2,
                          quality=90, module=3.0)
        assert reader.read(_gray(card)).document is not None
    finally:
        glyphs.glyph_set.cache_clear()


# --- TD3: a passport number is A-Z, 0-9 and '<' in every cell (ICAO 9303-4) -------------------

def _passport(number: str) -> SyntheticPerson:
    return SyntheticPerson("PE", number, "ROSA", None, "QUISPE", None, "F", "1988-11-30", None)


@pytest.mark.parametrize("number", ["C01X00T47", "AB12345O7", "X1234567<", "P0I8B5S2Z", "123456789"])
def test_td3_passport_numbers_with_letters_after_the_second_cell_are_read(number: str) -> None:
    text = td3_mrz(_passport(number)).decode()
    assert correct(_scores(text, 44), TD3) == text
    assert parse_any(text.encode(), "MRZ").document_number == number.replace("<", "")


def test_td3_a_cell_between_letter_and_digit_is_no_read() -> None:
    """O or 0 at the same score: the check digit must not be what decides."""
    text = td3_mrz(_passport("AB12345O7")).decode()
    scores = _scores(text, 44)
    scores[1, 7, _INDEX["0"]] = 0.88  # the 'O' of the number, a '0' nearly as likely
    with pytest.raises(Unreadable) as err:
        correct(scores, TD3)
    assert err.value.reason == "character_class"


def _mrz_value(char: str) -> int:
    return 0 if char == "<" else int(char, 36)


_PASSPORT_NUMBERS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=5, max_size=9).map(
    lambda n: n.ljust(9, "<"))
_TD3_GROUPS = [[(1, c) for c in range(0, 10)], [(1, c) for c in range(13, 20)], [(1, c) for c in range(21, 28)]]


@settings(max_examples=400, deadline=None)
@given(_PASSPORT_NUMBERS, st.lists(st.tuples(st.integers(0, 2), st.sampled_from(ALPHABET), st.floats(0.0, 0.3),
                                             st.floats(0.0, 0.3), st.integers(0, 9)), max_size=3),
       st.integers(0, 2 ** 32 - 1))
def test_fuzz_td3_corrector_never_gives_a_wrong_passport(number, misreads, seed) -> None:
    """Passport numbers of any letters and digits, up to one misread per check digit (a wrong
    glyph on top, the true one somewhere below) and noise everywhere: the true passport or nothing.

    Misreads are those a mod-10 check digit can see: a letter whose value equals a digit's mod 10
    (U=30 and 0, S=28 and 8) read confidently as that digit passes any check, as a confident
    misread of sex or state does; OCR-B's real confusions (O/0, I/1, B/8, S/5, Z/2) all change
    the value mod 10, and a close call between classes is refused (test above)."""
    truth = td3_mrz(_passport(number)).decode()
    scores = _scores(truth, 44) + np.random.default_rng(seed).uniform(-0.08, 0.08, (2, 44, 37)).astype(np.float32)
    used = set()
    for group, char, lead, drop, pick in misreads:
        if group in used:
            continue
        used.add(group)
        line, col = _TD3_GROUPS[group][pick % len(_TD3_GROUPS[group])]
        true_char = truth.split("\n")[line][col]
        if char == true_char or _mrz_value(char) % 10 == _mrz_value(true_char) % 10:
            continue
        scores[line, col, _INDEX[char]] = 0.9 + lead
        scores[line, col, _INDEX[true_char]] = 0.9 - drop
    try:
        text = correct(scores, TD3)
    except Unreadable:
        return
    try:
        doc = parse_any(text.encode(), "MRZ")
    except IdCardError:
        return
    assert _key(doc) == _key(parse_any(truth.encode(), "MRZ"))


# --- the 0/O/U tie in line 1's first number cell ---------------------------------------------------

PE_PERSON = SyntheticPerson("PE", "07654321", "ANA", None, "GIL", None, "F", "1990-08-22", None)
CL_PERSON = SyntheticPerson("CL", "12345678-5", "ANA", None, "GIL", None, "F", "1990-08-22", None)


def test_a_dni_starting_with_0_read_as_u_is_read_as_0() -> None:
    """U, A and K weigh like 0 in every check digit, so no check tells '0' from 'U': outside Chile
    the cell is a digit, whatever letter looks closest."""
    truth = td1_mrz(PE_PERSON).decode()
    scores = _scores(truth, 30)
    for letter in "UAK":
        scores[0, 5, _INDEX[letter]] = 0.95
    assert correct(scores, TD1) == truth


def test_a_chilean_serial_cell_between_0_and_u_is_no_read() -> None:
    truth = td1_mrz(CL_PERSON, card_serial="012345678").decode()
    scores = _scores(truth, 30)
    scores[0, 5, _INDEX["U"]] = 0.88  # '0' 0.90 vs 'U' 0.88: the glyph does not settle letter or digit
    with pytest.raises(Unreadable) as err:
        correct(scores, TD1)
    assert err.value.reason == "character_class"


def test_a_chilean_serial_starting_with_a_letter_is_read() -> None:
    truth = td1_mrz(CL_PERSON, card_serial="A12345678").decode()
    assert truth.startswith("IDCHLA12345678")
    assert correct(_scores(truth, 30), TD1) == truth
