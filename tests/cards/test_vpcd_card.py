"""The virtual card itself: pure APDU semantics, then over the real pcscd + vpcd stack."""
from __future__ import annotations

import time

from tests.device_extras import needs, optional
from tests.fakes.vpcd_card import (
    SW_FAILED, SW_OK, SW_WRONG_LENGTH, VirtualPicc, storage_card_atr, CARD_NAME_CLASSIC_1K,
)

scard = optional("smartcard.scard", "pcsc")

KEY = bytes.fromhex("A0A1A2A3A4A5")


def test_classic_atr_matches_acr122u_documented_value() -> None:
    # ACR122U manual, MIFARE Classic 1K: 3B 8F 80 01 80 4F 0C A0 00 00 03 06 03 00 01 00 00 00 00 6A
    assert storage_card_atr(CARD_NAME_CLASSIC_1K).hex().upper() == \
        "3B8F8001804F0CA000000306030001000000006A"


def test_classic_read_requires_authentication_with_the_right_key() -> None:
    card = VirtualPicc.classic_1k(bytes.fromhex("04A1B2C3"), key_a=KEY, data={4: b"hello"})
    assert card.transmit(bytes.fromhex("FFB0000410")) == SW_FAILED  # not authenticated
    assert card.transmit(bytes.fromhex("FF82000006FFFFFFFFFFFF")) == SW_OK
    assert card.transmit(bytes.fromhex("FF860000050100046000")) == SW_FAILED  # wrong key
    assert card.transmit(bytes.fromhex("FF82000006") + KEY) == SW_OK
    assert card.transmit(bytes.fromhex("FF860000050100046000")) == SW_OK
    assert card.transmit(bytes.fromhex("FFB0000410")) == b"hello".ljust(16, b"\0") + SW_OK
    assert card.transmit(bytes.fromhex("FFB0000810")) == SW_FAILED  # other sector
    assert card.transmit(bytes.fromhex("FF8600")) == SW_WRONG_LENGTH


def test_ultralight_read_returns_four_pages() -> None:
    card = VirtualPicc.ultralight(bytes.fromhex("04112233445566"), data=b"LOYALTY-0001")
    assert card.transmit(bytes.fromhex("FFB0000410")) == b"LOYALTY-0001\0\0\0\0" + SW_OK
    assert card.transmit(bytes.fromhex("FFB0000010"))[:3] == bytes.fromhex("041122")
    assert card.transmit(bytes.fromhex("FFB0006410")) == SW_FAILED


@needs("smartcard.scard", "pcsc")
def test_card_over_real_pcscd(make_card, live_pcscd) -> None:
    card = make_card(VirtualPicc.classic_1k(bytes.fromhex("04A1B2C3")))
    reader = next(r for r in live_pcscd.readers() if r.endswith("00 00"))
    rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    assert rc == scard.SCARD_S_SUCCESS
    try:
        card.insert()
        rc, states = scard.SCardGetStatusChange(ctx, 5000, [(reader, scard.SCARD_STATE_EMPTY)])
        assert rc == scard.SCARD_S_SUCCESS and states[0][1] & scard.SCARD_STATE_PRESENT
        assert bytes(states[0][2]) == card.card.atr
        rc, handle, proto = scard.SCardConnect(ctx, reader, scard.SCARD_SHARE_SHARED,
                                               scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        assert rc == scard.SCARD_S_SUCCESS
        rc, resp = scard.SCardTransmit(handle, proto, [0xFF, 0xCA, 0, 0, 0])
        assert bytes(resp) == bytes.fromhex("04A1B2C3") + SW_OK
        scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
        card.remove()
        deadline = time.monotonic() + 5
        state = states[0][1]
        while time.monotonic() < deadline:
            rc, states = scard.SCardGetStatusChange(ctx, 1000, [(reader, state)])
            state = states[0][1]
            if state & scard.SCARD_STATE_EMPTY:
                break
        assert state & scard.SCARD_STATE_EMPTY
    finally:
        scard.SCardReleaseContext(ctx)
