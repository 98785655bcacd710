"""Codec tests: byte-exact vectors from shared/notes/hardware.md, framing edge cases, fuzzing."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.drivers.r30x.commands import Status, SystemParameters
from agent.drivers.r30x.protocol import (
    PID_ACK,
    PID_COMMAND,
    PID_DATA,
    PID_END_DATA,
    PacketDecoder,
    checksum,
    encode_packet,
    split_data,
)
from tests.fakes.r30x_sensor import frame as fake_frame

VECTORS = [
    ("GenImg", PID_COMMAND, "01", "EF01FFFFFFFF010003010005"),
    ("Match", PID_COMMAND, "03", "EF01FFFFFFFF010003030007"),
    ("VfyPwd(0)", PID_COMMAND, "1300000000", "EF01FFFFFFFF0100071300000000001B"),
    ("reply OK", PID_ACK, "00", "EF01FFFFFFFF07000300000A"),
]


@pytest.mark.parametrize(("name", "pid", "payload", "wire"), VECTORS, ids=[v[0] for v in VECTORS])
def test_vectors_encode_and_decode_byte_exact(name: str, pid: int, payload: str, wire: str) -> None:
    assert encode_packet(pid, bytes.fromhex(payload)).hex().upper() == wire
    (packet,) = PacketDecoder().feed(bytes.fromhex(wire))
    assert (packet.pid, packet.payload.hex().upper(), packet.address) == (pid, payload, 0xFFFFFFFF)


def test_checksum_masks_to_16_bits_and_uses_the_data_packet_id() -> None:
    payload = b"\xff" * 256
    # 0x02 + 0x01 + 0x02 (length 258) + 256*255 = 65285 -> fits; 0x08 pushes it over 0xFFFF
    assert checksum(PID_DATA, payload) == (2 + 1 + 2 + 256 * 255) & 0xFFFF
    assert checksum(PID_END_DATA, payload) == (8 + 1 + 2 + 256 * 255) & 0xFFFF
    assert checksum(PID_END_DATA, payload) < 0x10000
    frames = split_data(payload * 2, 256)
    assert [f[6] for f in frames] == [PID_DATA, PID_END_DATA]
    assert frames[1][-2:] == checksum(PID_END_DATA, payload).to_bytes(2, "big")


@pytest.mark.parametrize("size", [32, 64, 128, 256])
def test_split_data_round_trips_through_decoder(size: int) -> None:
    data = bytes((i * 7) & 0xFF for i in range(512))
    wire = b"".join(split_data(data, size, address=0x12345678))
    packets = PacketDecoder().feed(wire)
    assert len(packets) == 512 // size
    assert all(p.address == 0x12345678 for p in packets)
    assert [p.pid for p in packets][-1] == PID_END_DATA
    assert b"".join(p.payload for p in packets) == data


def test_codec_agrees_with_the_independent_fake_framing() -> None:
    for pid, payload in [(PID_ACK, b"\x00\x01\x02"), (PID_DATA, bytes(range(128))), (PID_END_DATA, b"\xff" * 256)]:
        assert encode_packet(pid, payload, 0xCAFEBABE) == fake_frame(pid, payload, 0xCAFEBABE)


def test_decoder_resyncs_after_junk_and_split_delivery() -> None:
    wire = bytes.fromhex("EF01FFFFFFFF07000300000A")
    decoder = PacketDecoder()
    got = []
    for byte in b"\x00\xef\xef\x01\x99" + wire + wire:  # junk incl. a false header, then two packets byte by byte
        got += decoder.feed(bytes([byte]))
    assert [p.payload for p in got] == [b"\x00", b"\x00"]
    assert decoder.pending() == 0


def test_decoder_rejects_bad_checksum_and_finds_the_packet_behind_it() -> None:
    bad = bytes.fromhex("EF01FFFFFFFF07000300000B")
    good = bytes.fromhex("EF01FFFFFFFF07000300000A")
    decoder = PacketDecoder()
    assert [p.payload for p in decoder.feed(bad + good)] == [b"\x00"]
    assert decoder.rejected == 1


def test_decoder_rejects_impossible_lengths_quickly() -> None:
    decoder = PacketDecoder()
    assert decoder.feed(bytes.fromhex("EF01FFFFFFFF07FFFF")) == []
    assert decoder.rejected == 1
    assert decoder.pending() < 9  # did not wait for 64 KiB


def test_encode_refuses_bad_input() -> None:
    with pytest.raises(ValueError):
        encode_packet(0x05, b"\x00")
    with pytest.raises(ValueError):
        encode_packet(PID_COMMAND, b"")
    with pytest.raises(ValueError):
        encode_packet(PID_DATA, bytes(257))
    with pytest.raises(ValueError):
        split_data(bytes(512), 100)


def test_every_documented_status_code_is_typed() -> None:
    documented = [0x00, 0x01, 0x02, 0x03, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0D, 0x0E, 0x13, 0x15, 0x18, 0x1A, 0x20, 0x21]
    for value in documented:
        status = Status.from_code(value)
        assert status is not Status.UNKNOWN and status.wire == value
        assert status.code.isidentifier() and status.es and status.en
    assert len({s.code for s in Status}) == len(Status)


def test_sys_para_rejects_short_or_invalid() -> None:
    with pytest.raises(ValueError):
        SystemParameters.parse(bytes(15))
    with pytest.raises(ValueError):
        SystemParameters.parse(bytes.fromhex("0000000000000003FFFFFFFF00090006"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_fuzz_decoder_never_crashes_and_only_yields_valid_packets(chunks: list[bytes]) -> None:
    decoder = PacketDecoder()
    for chunk in chunks:
        for packet in decoder.feed(chunk):
            # Anything yielded must re-encode to a frame whose checksum the codec itself computed.
            assert packet.encode()[-2:] == checksum(packet.pid, packet.payload).to_bytes(2, "big")


@settings(max_examples=300, deadline=None)
@given(
    pid=st.sampled_from([PID_COMMAND, PID_DATA, PID_ACK, PID_END_DATA]),
    payload=st.binary(min_size=1, max_size=256),
    junk=st.binary(max_size=40),
    flip=st.integers(min_value=0, max_value=0xFFFF),
)
def test_fuzz_a_corrupted_checksum_is_never_accepted(pid: int, payload: bytes, junk: bytes, flip: int) -> None:
    wire = bytearray(encode_packet(pid, payload, 0x01020304))
    good_sum = int.from_bytes(wire[-2:], "big")
    bad_sum = (good_sum ^ (flip or 1)) & 0xFFFF
    wire[-2:] = bad_sum.to_bytes(2, "big")
    packets = PacketDecoder().feed(junk + bytes(wire))
    assert not any(p.address == 0x01020304 and p.payload == payload and p.pid == pid for p in packets)


@settings(max_examples=200, deadline=None)
@given(pid=st.sampled_from([PID_ACK, PID_DATA]), payload=st.binary(min_size=1, max_size=256), junk=st.binary(max_size=60))
def test_fuzz_a_valid_packet_behind_junk_is_always_found(pid: int, payload: bytes, junk: bytes) -> None:
    packets = PacketDecoder().feed(junk + encode_packet(pid, payload, 0xA0B0C0D0))
    assert any(p.pid == pid and p.payload == payload and p.address == 0xA0B0C0D0 for p in packets)
