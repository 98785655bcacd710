"""Fixtures for the card tests: a private real pcscd with the vpcd virtual reader."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.device_extras import REQUIRED
from tests.fakes.pcscd import PrivatePcscd, missing_requirements
from tests.fakes.vpcd_card import VirtualPicc, VpcdCard


@pytest.fixture(scope="session")
def pcscd() -> Iterator[PrivatePcscd]:
    reason = missing_requirements()
    if reason is not None and REQUIRED:
        pytest.fail(f"LOYALTY_REQUIRE_DEVICE_EXTRAS=1 but the real PC/SC stack is unavailable: {reason}")
    if reason is not None:
        pytest.skip(f"real PC/SC stack unavailable: {reason}")
    daemon = PrivatePcscd()
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.close()


@pytest.fixture
def live_pcscd(pcscd: PrivatePcscd) -> PrivatePcscd:
    """The session pcscd, restarted if a previous test unplugged the reader."""
    if not any(r.startswith(pcscd.reader_name) for r in pcscd.readers()):
        pcscd.start()
    return pcscd


@pytest.fixture
def make_card(live_pcscd: PrivatePcscd) -> Iterator[Callable[[VirtualPicc], VpcdCard]]:
    cards: list[VpcdCard] = []

    def factory(picc: VirtualPicc) -> VpcdCard:
        card = VpcdCard(picc, live_pcscd.port)
        cards.append(card)
        return card

    yield factory
    for card in cards:
        card.remove()
        assert card.error is None, f"virtual card crashed: {card.error!r}"
    if any(r.startswith(live_pcscd.reader_name) for r in live_pcscd.readers()):
        live_pcscd.wait_for_card(present=False)
