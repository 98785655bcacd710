"""Verification's download + match exchange against the UART wire-time floor.

The fake R30x sensor paces every byte at the configured baud (10 bits per byte, both
directions), so the floor is physical: DownChar command and ack, the template in data
packets, Match command and reply. Target: median exchange <= 1.3x the floor.
"""
from __future__ import annotations

import statistics
import sys
import time

from agent.drivers.r30x.client import R30xClient
from agent.drivers.r30x.commands import Status
from agent.drivers.r30x.link import Link, open_serial
from agent.drivers.r30x.protocol import TEMPLATE_SIZE, wire_bytes, wire_seconds
from tests.fakes.r30x_sensor import FakeR30xSensor, identity_template

TARGET = 1.3
ROUNDS = 7


def exchange_floor_bytes(packet_size: int) -> int:
    packets, rest = divmod(TEMPLATE_SIZE, packet_size)
    data = packets * wire_bytes(packet_size) + (wire_bytes(rest) if rest else 0)
    down_char = wire_bytes(2) + wire_bytes(1)  # command [09 buf] + ack [status]
    match = wire_bytes(1) + wire_bytes(3)  # command [03] + reply [status score(2)]
    return down_char + data + match


def measure(baud: int, packet_size: int) -> tuple[float, float]:
    template = identity_template("bench")
    with FakeR30xSensor(baud=baud, packet_size=packet_size) as fake:
        client = R30xClient(Link(open_serial(fake.path, baud), fake.address, reply_timeout=2.0), packet_size)
        fake.place_finger("bench", quality=0.9)
        if client.gen_img() is not Status.OK or client.img2tz(1) is not Status.OK:
            raise RuntimeError("fake capture failed")
        times = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            client.down_char(2, template)
            result = client.match()
            times.append(time.perf_counter() - started)
            if result.score < 200:
                raise RuntimeError(f"unexpected score {result.score}")
        client.link.close()
    floor = wire_seconds(exchange_floor_bytes(packet_size), baud)
    return statistics.median(times), floor


def main(argv: list[str]) -> int:
    baud = int(argv[0]) if argv else 57600
    worst = 0.0
    print(f"download+match of a {TEMPLATE_SIZE}-byte template, fake sensor paced at {baud} baud, median of {ROUNDS}")
    for size in (128, 32):
        took, floor = measure(baud, size)
        ratio = took / floor
        worst = max(worst, ratio)
        print(f"  packet {size:3d} B: wire bytes {exchange_floor_bytes(size)}, floor {floor * 1000:6.1f} ms, "
              f"measured {took * 1000:6.1f} ms, ratio {ratio:.2f}x (target <= {TARGET}x)")
    print(f"  worst ratio {worst:.2f}x: {'OK' if worst <= TARGET else 'OVER TARGET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
