"""Hand-held scanners giving text: a serial MRZ reader over a real pty (byte-exact input) and a
keyboard-wedge PDF417/QR scanner through the wedge decoder, both into the same parsers."""
from __future__ import annotations

import os
import queue
import tty

import pytest

from agent.drivers.keymap import WedgeDecoder, keystrokes
from agent.drivers.mrz_serial import MrzAssembler, SerialMrzReader
from agent.idcard.errors import IdCardError, NotAnIdDocument
from agent.idcard.parsers import parse_any
from agent.idcard.samples import SyntheticPerson, ar_dni_payload, ar_dni_qr_2026, cl_qr_url, td1_mrz, td3_mrz
from agent.idcard.scanned_text import parse_scanned

AR = SyntheticPerson("AR", "23456789", "JUAN", "IGNACIO", "PAZ", "GIL", "M", "1985-03-04", None)
CL = SyntheticPerson("CL", "15988779-0", "ANA", None, "ROJAS", None, "F", "1984-07-09", None)
CO = SyntheticPerson("CO", "1047425328", "ANA", None, "GIL", None, "F", "1990-08-22", None)


def test_serial_mrz_reader_over_a_real_pty() -> None:
    """CR-terminated lines as readers send them, trailing filler dropped on one line, a noise
    line between documents, then a passport."""
    master, slave = os.openpty()
    tty.setraw(slave)
    blocks: queue.Queue[bytes] = queue.Queue()
    reader = SerialMrzReader(os.ttyname(slave), blocks.put)
    reader.start()
    try:
        assert reader.connected.wait(5)
        co = td1_mrz(CO).split(b"\n")
        wire = co[0] + b"\r" + co[1] + b"\r" + co[2].rstrip(b"<") + b"\r\r"
        wire += b"READER V2.1 OK\r\n"
        passport = td3_mrz(SyntheticPerson("PE", "AB1234567", "ROSA", None, "QUISPE", None, "F", "1988-11-30", None))
        wire += passport.split(b"\n")[0].rstrip(b"<") + b"\r\n" + passport.split(b"\n")[1] + b"\r\n"
        os.write(master, wire)
        first = blocks.get(timeout=3)
        assert parse_scanned(first) == parse_any(td1_mrz(CO), "MRZ")
        assert parse_scanned(blocks.get(timeout=3)).document_type == "PASSPORT"
        with pytest.raises(queue.Empty):
            blocks.get(timeout=0.3)
    finally:
        reader.stop()
        os.close(master)
        os.close(slave)


def test_assembler_starts_over_after_a_pause_or_a_foreign_line() -> None:
    lines = td1_mrz(AR).decode().split("\n")
    assembler = MrzAssembler(gap_s=0.5)
    assert assembler.feed(lines[0], 0.0) is None and assembler.feed(lines[1], 0.1) is None
    assert assembler.feed(lines[0], 5.0) is None  # the half document was abandoned
    assert assembler.feed(lines[1], 5.1) is None
    assert assembler.feed(lines[2], 5.2) == td1_mrz(AR)
    assert assembler.feed("HELLO", 6.0) is None and assembler.feed(lines[1], 6.1) is None  # no line 1
    assert assembler.dropped_lines == 4


@pytest.mark.parametrize("payload", [ar_dni_payload(AR), ar_dni_qr_2026(AR), cl_qr_url(CL)],
                         ids=["ar_pdf417", "ar_qr_2026", "cl_qr"])
def test_keyboard_wedge_scanner_text_parses_like_the_camera_read(payload: bytes) -> None:
    decoder = WedgeDecoder(inter_key_timeout_s=0.15, max_record_chars=1024)
    typed = [r for r in (decoder.feed(c, v, t) for c, v, t in keystrokes(payload.decode() + "\n", start=1.0)) if r]
    assert typed == [payload.decode()]
    symbology = "QRCode" if payload.startswith(b"http") or payload.count(b"@") == 7 else "PDF417"
    assert parse_scanned(typed[0]) == parse_any(payload, symbology)


@pytest.mark.parametrize("text", ["7702004003508", "hola", "IDCOL<<<\nXX\nYY"])
def test_scanned_junk_is_refused(text: str) -> None:
    with pytest.raises(IdCardError):
        parse_scanned(text)


def test_scanned_foreign_url_is_not_an_id() -> None:
    with pytest.raises(NotAnIdDocument):
        parse_scanned("https://tienda.example.com/p/1")


def _type(decoder: WedgeDecoder, events: list[tuple[int, int]]) -> list[str]:
    """Recorded key events (code, value) as the kernel reports them, 2 ms apart."""
    out = [decoder.feed(code, value, 1.0 + 0.002 * i) for i, (code, value) in enumerate(events)]
    return [r for r in out if r]


def _press(code: int, *held: int) -> list[tuple[int, int]]:
    return [(h, 1) for h in held] + [(code, 1), (code, 0)] + [(h, 0) for h in held]


SHIFT, ALTGR, ALT, ENTER = 42, 100, 56, 28


@pytest.mark.parametrize("layout, events, text", [
    # Key codes and symbols from xkb-data symbols/es and symbols/latam (not from our own table).
    ("es", _press(39, SHIFT) + _press(40) + _press(18, SHIFT) + _press(3, ALTGR), "ÑÉ@"),  # Ñ, ´ then E, AltGr+2
    ("latam", _press(39, SHIFT) + _press(26) + _press(18, SHIFT) + _press(16, ALTGR), "ÑÉ@"),  # ´ is AD11 here
    ("es", _press(40, SHIFT) + _press(22, SHIFT) + _press(40) + _press(57), "Ü´"),  # ¨ then U; ´ then space
    ("us", _press(39, SHIFT), ":"),  # the same key on a US layout
    # Alt + keypad: 0209 is Windows-1252 Ñ, 165 is code page 437 Ñ.
    ("us", [(ALT, 1)] + _press(82) + _press(80) + _press(82) + _press(73) + [(ALT, 0)]
     + [(ALT, 1)] + _press(79) + _press(77) + _press(76) + [(ALT, 0)], "ÑÑ"),
])
def test_wedge_layouts_decode_recorded_key_events(layout: str, events: list[tuple[int, int]], text: str) -> None:
    assert _type(WedgeDecoder(layout=layout), events + _press(ENTER)) == [text]


def test_a_spanish_layout_scanner_keeps_the_ene_and_accents_of_an_argentine_dni() -> None:
    person = SyntheticPerson("AR", "23456789", "JOSÉ", "MARÍA", "PEÑA", "MUÑOZ", "M", "1985-03-04", None)
    payload = ar_dni_payload(person).decode("utf-8")
    for layout in ("es", "latam"):
        decoder = WedgeDecoder(layout=layout, max_record_chars=2048)
        typed = [r for r in (decoder.feed(c, v, t) for c, v, t in keystrokes(payload + "\n", layout=layout)) if r]
        assert typed == [payload]
        assert parse_scanned(typed[0]).first_surname == "PEÑA"
    us = WedgeDecoder(layout="us", max_record_chars=2048)  # the same key presses read as US lose the Ñ
    typed = [r for r in (us.feed(c, v, t) for c, v, t in keystrokes(payload + "\n", layout="es")) if r]
    assert typed and "Ñ" not in typed[0]
