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
