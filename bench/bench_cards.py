"""Card swipe benchmarks: attendant PIN verification cost and card tap -> session event latency.

Targets: PIN verification <= 60 ms at the chosen argon2id cost; tap -> session event <= 50 ms
over the real pcscd stack. Baselines measured in the same run: a plain HMAC-SHA256 PIN check
(what the argon2id cost is paid on top of) and a bare pyscard UID transmit round trip.

The tap figure is split in two because pcscd polls drivers without an event thread (vpcd
here, many CCID PICC readers in the field) every 400 ms: "pcscd detection" is that poll, not
agent work; "agent: detection -> event" is what the agent adds (connect, UID, session, publish).
"""
from __future__ import annotations

import hmac
import hashlib
import os
import statistics
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.common import target_status

PIN_TARGET_MS = 60.0
TAP_TARGET_MS = 50.0


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def bench_pin(rounds: int = 15) -> bool:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from agent.cards.config import PinSettings
    from agent.cards.pin_bundle import HASH_PARAMS, build_bundle, peppered
    from agent.cards.pins import MIGRATIONS, AttendantPins
    from agent.errors import AgentError
    from agent.store import schema_core
    from agent.store.db import Database

    key, pepper = Ed25519PrivateKey.generate(), os.urandom(32)
    now = datetime.now(timezone.utc)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db", schema_core.MIGRATIONS + MIGRATIONS)
        pins = AttendantPins(db, station_id="bench", settings=PinSettings(max_failures=20),
                             pepper=pepper, public_key=key.public_key())
        pins.import_bundle(build_bundle(key, version=1, stations=["*"], issued_at=now,
                                        expires_at=now + timedelta(days=1), pins={"P-01": "482913"},
                                        pepper=pepper))
        ok, wrong = [], []
        for _ in range(rounds):
            t = time.perf_counter()
            pins.verify("P-01", "482913")
            ok.append(time.perf_counter() - t)
        for i in range(min(rounds, 8)):
            t = time.perf_counter()
            try:
                pins.verify(f"NOBODY-{i}", "000000")  # unknown id: dummy hash, same cost
            except AgentError:
                pass
            wrong.append(time.perf_counter() - t)
        db.close()
    expected = hmac.new(pepper, b"482913", hashlib.sha256).digest()
    base = []
    for _ in range(2000):
        t = time.perf_counter()
        hmac.compare_digest(peppered(pepper, "482913"), expected)
        base.append(time.perf_counter() - t)
    ok_ms, wrong_ms, base_ms = _median_ms(ok), _median_ms(wrong), _median_ms(base)
    print(f"argon2id cost: m={HASH_PARAMS['memory_cost']} KiB t={HASH_PARAMS['time_cost']} "
          f"p={HASH_PARAMS['parallelism']}")
    print(f"PIN verify (right PIN, incl. SQLite read): median {ok_ms:.1f} ms, max {max(ok) * 1000:.1f} ms "
          f"over {rounds}")
    print(f"PIN verify (unknown attendant, incl. failure write): median {wrong_ms:.1f} ms")
    print(f"baseline plain HMAC-SHA256 check: median {base_ms * 1000:.1f} us; "
          f"ratio argon2id/HMAC = {ok_ms / base_ms:.0f}x")
    passed = ok_ms <= PIN_TARGET_MS
    print(f"PIN target <= {PIN_TARGET_MS:.0f} ms: {'PASS' if passed else 'FAIL'}")
    return passed


def bench_tap(taps: int = 8) -> bool | None:
    from tests.fakes.pcscd import PrivatePcscd, missing_requirements

    reason = missing_requirements()
    if reason:
        print(f"tap benchmark skipped: {reason}")
        return None
    from smartcard import scard

    from agent.cards.events import EventHub
    from agent.cards.sessions import SwipeSessions
    from agent.drivers.pcsc_reader import PcscCardReader, PcscReaderConfig
    from tests.fakes.vpcd_card import VirtualPicc, VpcdCard

    class NoPins:  # sessions only need verify() for authorization, not measured here
        def verify(self, *_: object) -> None:
            raise AssertionError

    daemon = PrivatePcscd()
    daemon.start()
    try:
        hub = EventHub()
        sessions = SwipeSessions(NoPins(), hub)  # type: ignore[arg-type]
        done = threading.Event()
        marks: list[tuple[float, float]] = []

        def on_read(read) -> None:  # type: ignore[no-untyped-def]
            sessions.on_card_read(read)
            marks.append((read.detected_at, time.monotonic()))
            done.set()

        reader = PcscCardReader(on_read, PcscReaderConfig(reader_pattern="00 00$"))
        reader.start()
        time.sleep(0.3)
        end_to_end, agent_part = [], []
        for i in range(taps):
            card = VpcdCard(VirtualPicc.classic_1k(bytes([4, 0xA1, 0xB2, i])), daemon.port)
            done.clear()
            t = time.monotonic()
            card.insert()
            if not done.wait(5):
                print("tap not detected within 5 s")
                return False
            detected, published = marks[-1]
            end_to_end.append(published - t)
            agent_part.append(published - detected)
            card.remove()
            daemon.wait_for_card(present=False)
        reader.stop()

        # Baseline: bare pyscard on a connected card.
        card = VpcdCard(VirtualPicc.classic_1k(bytes.fromhex("04A1B2C3")), daemon.port)
        card.insert()
        daemon.wait_for_card(present=True)
        name = next(r for r in daemon.readers() if r.endswith("00 00"))
        rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        transmit, connect_uid = [], []
        for _ in range(30):
            t = time.perf_counter()
            rc, handle, proto = scard.SCardConnect(ctx, name, scard.SCARD_SHARE_SHARED, 3)
            t1 = time.perf_counter()
            scard.SCardTransmit(handle, proto, [0xFF, 0xCA, 0, 0, 0])
            t2 = time.perf_counter()
            scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
            transmit.append(t2 - t1)
            connect_uid.append(time.perf_counter() - t)
        scard.SCardReleaseContext(ctx)
        card.remove()
    finally:
        daemon.close()
    agent_ms = _median_ms(agent_part)
    base_ms = _median_ms(transmit)
    print(f"tap -> session event, end to end (incl. pcscd's 400 ms poll of vpcd): median "
          f"{_median_ms(end_to_end):.0f} ms, min {min(end_to_end) * 1000:.0f}, max {max(end_to_end) * 1000:.0f} "
          f"over {taps} taps")
    print(f"agent: pcscd detection -> session event published: median {agent_ms:.1f} ms, "
          f"max {max(agent_part) * 1000:.1f} ms")
    print(f"baseline bare pyscard UID transmit: median {base_ms:.2f} ms "
          f"(connect+UID+disconnect {_median_ms(connect_uid):.2f} ms); ratio agent/transmit = "
          f"{agent_ms / base_ms:.1f}x")
    passed = agent_ms <= TAP_TARGET_MS
    print(f"tap target <= {TAP_TARGET_MS:.0f} ms (agent part): {'PASS' if passed else 'FAIL'}; "
          f"end-to-end is bounded below by the reader driver's poll interval")
    return passed


def main(argv: list[str]) -> int:
    pin_ok = bench_pin()
    tap_ok = bench_tap()
    return target_status(pin_ok and tap_ok is not False)


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
