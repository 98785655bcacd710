"""The PC/SC driver against a real pcscd with the vpcd reader and the virtual card."""
from __future__ import annotations

import queue
import time

import pytest

from tests.device_extras import require_module_level

require_module_level("smartcard.scard", "pcsc")  # before the driver: it imports pyscard

from agent.drivers.pcsc_atr import CardType  # noqa: E402
from agent.drivers.pcsc_reader import CardRead, CardReadError, MifareKey, PcscCardReader, PcscReaderConfig
from tests.fakes.vpcd_card import VirtualPicc  # noqa: E402

KEY_A = bytes.fromhex("A0A1A2A3A4A5")
WAIT = 5.0  # pcscd polls vpcd every 400 ms; generous for a loaded CI machine


class Collector:
    def __init__(self) -> None:
        self.events: queue.Queue[object] = queue.Queue()

    def on_read(self, read: CardRead) -> None:
        self.events.put(read)

    def on_error(self, error: CardReadError) -> None:
        self.events.put(error)

    def on_removed(self, reader: str) -> None:
        self.events.put(("removed", reader))

    def next(self, timeout: float = WAIT) -> object:
        return self.events.get(timeout=timeout)

    def expect_nothing(self, seconds: float) -> None:
        with pytest.raises(queue.Empty):
            self.events.get(timeout=seconds)


@pytest.fixture
def start_reader(live_pcscd):
    readers: list[PcscCardReader] = []

    def start(config: PcscReaderConfig | None = None) -> Collector:
        collector = Collector()
        reader = PcscCardReader(collector.on_read, config or PcscReaderConfig(reader_pattern="00 00$"),
                                on_error=collector.on_error, on_removed=collector.on_removed)
        reader.start()
        readers.append(reader)
        return collector

    yield start
    for reader in readers:
        reader.stop()


def test_classic_tap_reads_uid_type_and_blocks_with_configured_key(make_card, start_reader) -> None:
    cfg = PcscReaderConfig(reader_pattern="00 00$", classic_blocks=(4, 5),
                           classic_keys=(MifareKey(bytes.fromhex("FFFFFFFFFFFF")), MifareKey(KEY_A)))
    events = start_reader(cfg)
    card = make_card(VirtualPicc.classic_1k(bytes.fromhex("04A1B2C3"), key_a=KEY_A,
                                            data={4: b"LOYAL-000123", 5: b"\x01\x02"}))
    card.insert()
    read = events.next()
    assert isinstance(read, CardRead)
    assert read.uid == "04A1B2C3"
    assert read.card_type is CardType.MIFARE_CLASSIC_1K
    assert read.reader.endswith("00 00")
    assert read.blocks[4] == b"LOYAL-000123".ljust(16, b"\0")
    assert read.blocks[5][:2] == b"\x01\x02"
    card.remove()
    assert events.next() == ("removed", read.reader)


def test_ntag_pages_are_read(make_card, start_reader) -> None:
    events = start_reader(PcscReaderConfig(reader_pattern="00 00$", ntag_pages=(4, 6)))
    make_card(VirtualPicc.ultralight(bytes.fromhex("04112233445566"),
                                     data=b"CARD-9876543210-X")).insert()
    read = events.next()
    assert isinstance(read, CardRead)
    assert (read.uid, read.card_type) == ("04112233445566", CardType.ULTRALIGHT)
    assert read.pages == b"CARD-9876543210-X\0\0\0\0\0\0\0"


def test_wrong_key_reports_auth_failure_not_a_read(make_card, start_reader) -> None:
    events = start_reader(PcscReaderConfig(reader_pattern="00 00$", classic_blocks=(4,)))
    make_card(VirtualPicc.classic_1k(bytes.fromhex("04A1B2C3"), key_a=KEY_A, key_b=KEY_A)).insert()
    error = events.next()
    assert isinstance(error, CardReadError) and error.code == "card_auth_failed"


@pytest.mark.parametrize("uid", [b"\x01\x02\x03", b"\x01\x02\x03\x04\x05"])
def test_short_or_odd_uid_is_rejected(make_card, start_reader, uid: bytes) -> None:
    events = start_reader()
    make_card(VirtualPicc.classic_1k(uid)).insert()
    error = events.next()
    assert isinstance(error, CardReadError) and error.code == "card_uid_invalid"


def test_contact_card_atr_is_unsupported(make_card, start_reader) -> None:
    events = start_reader()
    make_card(VirtualPicc(uid=b"\x01\x02\x03\x04",
                          atr=bytes.fromhex("3BBE9600004103000000000000000000029000"))).insert()
    error = events.next()
    assert isinstance(error, CardReadError) and error.code == "card_unsupported"


def test_reader_name_pattern_filters_readers(make_card, start_reader) -> None:
    events = start_reader(PcscReaderConfig(reader_pattern="Some Other Reader"))
    make_card(VirtualPicc.classic_1k(bytes.fromhex("04A1B2C3"))).insert()
    events.expect_nothing(1.0)


def test_fast_swap_recovers_and_reads_the_new_card(make_card, start_reader) -> None:
    events = start_reader()
    first = make_card(VirtualPicc.classic_1k(bytes.fromhex("04A1B2C3")))
    second = make_card(VirtualPicc.ultralight(bytes.fromhex("04112233445566")))
    first.insert()
    assert events.next().uid == "04A1B2C3"
    first.remove()
    second.insert()  # faster than pcscd's 400 ms poll: the driver must not stay confused
    deadline = time.monotonic() + WAIT
    uids = []
    while time.monotonic() < deadline and "04112233445566" not in uids:
        try:
            event = events.next(timeout=0.5)
        except queue.Empty:
            continue
        if isinstance(event, CardRead):
            uids.append(event.uid)
    assert "04112233445566" in uids


def test_reader_unplug_and_replug(make_card, start_reader, live_pcscd) -> None:
    events = start_reader()
    card = make_card(VirtualPicc.classic_1k(bytes.fromhex("04A1B2C3")))
    card.insert()
    assert events.next().uid == "04A1B2C3"
    card.remove()
    assert events.next()[0] == "removed"
    live_pcscd.unplug_reader()  # daemon and reader gone (see tests/fakes/pcscd.py)
    time.sleep(0.7)  # the driver sees the service vanish and backs off
    live_pcscd.replug_reader()
    card.insert()
    read = events.next(timeout=WAIT + 2)
    assert isinstance(read, CardRead) and read.uid == "04A1B2C3"
