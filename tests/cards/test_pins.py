"""Attendant PINs: signed bundles, verification, persisted escalating lockout (real SQLite)."""
from __future__ import annotations

import base64
import json
import os
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent.cards.config import PinSettings
from agent.cards.pin_bundle import build_bundle, canonical
from agent.cards.pins import MIGRATIONS, AttendantPins, install_pepper, load_pepper
from agent.errors import AgentError
from agent.store import schema_core
from agent.store.db import Database

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
PEPPER = bytes(range(32))
HO_KEY = Ed25519PrivateKey.generate()


class Clock:
    def __init__(self) -> None:
        self.t = T0.timestamp()

    def __call__(self) -> float:
        return self.t


def bundle(version: int = 1, *, pins=None, stations=("st-1",), expires=T0 + timedelta(days=30),
           key=HO_KEY, pepper=PEPPER) -> bytes:
    return build_bundle(key, version=version, stations=list(stations), issued_at=T0 - timedelta(hours=1),
                        expires_at=expires, pins=pins or {"P-01": "1234", "P-02": "908172"}, pepper=pepper)


@pytest.fixture
def db(tmp_path):
    database = Database(tmp_path / "agent.db", schema_core.MIGRATIONS + MIGRATIONS)
    yield database
    database.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pins(db, clock) -> AttendantPins:
    service = AttendantPins(db, station_id="st-1", settings=PinSettings(max_failures=3, lockout_base_s=60,
                                                                        lockout_max_s=200),
                            pepper=PEPPER, public_key=HO_KEY.public_key(), now=clock)
    service.import_bundle(bundle())
    return service


def code_of(fn, *args) -> str:
    with pytest.raises(AgentError) as info:
        fn(*args)
    return info.value.code


def outbox(db, type_: str) -> list[dict]:
    rows = db.read(lambda c: c.execute("SELECT payload FROM outbox WHERE type = ? ORDER BY seq", (type_,)).fetchall())
    return [json.loads(r[0]) for r in rows]


def test_right_pin_passes_and_wrong_or_unknown_look_the_same(pins) -> None:
    pins.verify("P-01", "1234")
    pins.verify("P-02", "908172")
    with pytest.raises(AgentError) as wrong:
        pins.verify("P-01", "4321")
    with pytest.raises(AgentError) as unknown:
        pins.verify("P-99", "1234")
    assert (wrong.value.code, wrong.value.status, wrong.value.es, wrong.value.extra) == \
        (unknown.value.code, unknown.value.status, unknown.value.es, unknown.value.extra)
    assert wrong.value.code == "attendant_pin_invalid" and wrong.value.status == 403


def test_pin_needs_the_station_pepper(db, clock) -> None:
    other = AttendantPins(db, station_id="st-1", settings=PinSettings(), pepper=os.urandom(32),
                          public_key=HO_KEY.public_key(), now=clock)
    other.import_bundle(bundle())
    assert code_of(other.verify, "P-01", "1234") == "attendant_pin_invalid"


def test_a_full_sync_queue_never_undoes_a_lockout_or_blocks_a_new_bundle(pins, db, clock) -> None:
    from agent.store.outbox import OutboxFull, append_event, configure_budget

    db.write(lambda c: configure_budget(c, 1, None))  # every business event is now refused (507)
    with pytest.raises(OutboxFull):
        db.write(lambda c: append_event(c, "test.sale", {"n": 1}))
    for _ in range(2):
        assert code_of(pins.verify, "P-01", "0000") == "attendant_pin_invalid"
    assert code_of(pins.verify, "P-01", "0000") == "attendant_locked_out"
    assert code_of(pins.verify, "P-01", "1234") == "attendant_locked_out"  # guessing stays stopped
    assert len(outbox(db, "attendant.locked_out")) == 1
    pins.import_bundle(bundle(version=2))
    assert outbox(db, "pins.bundle_imported")[-1]["version"] == 2


def test_lockout_escalates_persists_across_restart_and_alerts(pins, db, clock) -> None:
    for _ in range(2):
        assert code_of(pins.verify, "P-01", "0000") == "attendant_pin_invalid"
    assert code_of(pins.verify, "P-01", "0000") == "attendant_locked_out"
    # Locked: even the right PIN is refused.
    with pytest.raises(AgentError) as locked:
        pins.verify("P-01", "1234")
    assert locked.value.status == 423 and 0 < locked.value.extra["retry_after_s"] <= 61
    # A restart (new service over the same database) keeps the lockout.
    restarted = AttendantPins(db, station_id="st-1", settings=pins.settings, pepper=PEPPER,
                              public_key=HO_KEY.public_key(), now=clock)
    assert code_of(restarted.verify, "P-01", "1234") == "attendant_locked_out"
    clock.t += 61
    for _ in range(3):
        error = code_of(restarted.verify, "P-01", "0000")
    assert error == "attendant_locked_out"
    alerts = outbox(db, "attendant.locked_out")
    assert [a["locked_for_s"] for a in alerts] == [60, 120]  # escalating
    assert all("0000" not in json.dumps(a) and "1234" not in json.dumps(a) for a in alerts)
    clock.t += 121
    for _ in range(3):
        code_of(restarted.verify, "P-01", "0000")
    assert outbox(db, "attendant.locked_out")[-1]["locked_for_s"] == 200  # capped
    clock.t += 201
    restarted.verify("P-01", "1234")  # success resets the counters
    assert code_of(restarted.verify, "P-01", "0000") == "attendant_pin_invalid"


def test_unknown_attendants_are_locked_out_too(pins) -> None:
    codes = [code_of(pins.verify, "NOBODY", "1111") for _ in range(3)]
    assert codes == ["attendant_pin_invalid", "attendant_pin_invalid", "attendant_locked_out"]


def test_tampered_bundle_is_rejected_and_nothing_changes(pins) -> None:
    doc = json.loads(bundle(2, pins={"P-01": "5555"}))
    doc["payload"]["attendants"].append({"id": "EVIL", "pin_hash": doc["payload"]["attendants"][0]["pin_hash"]})
    assert code_of(pins.import_bundle, json.dumps(doc).encode()) == "pin_bundle_bad_signature"
    assert pins.installed_version() == 1
    pins.verify("P-01", "1234")


def test_bundle_signed_by_another_key_is_rejected(pins) -> None:
    assert code_of(pins.import_bundle, bundle(2, key=Ed25519PrivateKey.generate())) == "pin_bundle_bad_signature"


def test_stale_expired_and_foreign_bundles(pins, clock) -> None:
    assert code_of(pins.import_bundle, bundle(1)) == "pin_bundle_stale"
    assert code_of(pins.import_bundle, bundle(2, expires=T0 - timedelta(seconds=1))) == "pin_bundle_expired"
    assert code_of(pins.import_bundle, bundle(2, stations=("st-2",))) == "pin_bundle_wrong_station"
    pins.import_bundle(bundle(3, pins={"P-01": "7777"}, stations=("*",)))
    assert pins.installed_version() == 3
    assert code_of(pins.verify, "P-02", "908172") == "attendant_pin_invalid"  # removed by v3
    pins.verify("P-01", "7777")
    clock.t += 31 * 86400
    assert code_of(pins.verify, "P-01", "7777") == "pin_bundle_expired"


@pytest.mark.parametrize("mutate", [
    lambda p: p.update(version="2"),
    lambda p: p["attendants"].append({"id": "x" * 40, "pin_hash": "$argon2id$"}),
    lambda p: p["attendants"][0].update(pin_hash="not-a-hash"),
    lambda p: p.update(expires_at="tomorrow"),
    lambda p: p.update(format="other/9"),
])
def test_malformed_but_validly_signed_payloads(pins, mutate) -> None:
    doc = json.loads(bundle(2))
    mutate(doc["payload"])
    doc["signature"] = base64.b64encode(HO_KEY.sign(canonical(doc["payload"]))).decode()
    assert code_of(pins.import_bundle, json.dumps(doc).encode()) == "pin_bundle_malformed"


def test_weak_argon2_parameters_are_refused(pins) -> None:
    from argon2 import PasswordHasher, Type

    doc = json.loads(bundle(2))
    doc["payload"]["attendants"][0]["pin_hash"] = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1,
                                                                 type=Type.ID).hash(b"x")
    doc["signature"] = base64.b64encode(HO_KEY.sign(canonical(doc["payload"]))).decode()
    assert code_of(pins.import_bundle, json.dumps(doc).encode()) == "pin_bundle_weak_hash"


def test_garbage_file(pins) -> None:
    assert code_of(pins.import_bundle, b"\x00\xffnot json") == "pin_bundle_malformed"


def test_pepper_file_roundtrip_and_missing(tmp_path) -> None:
    assert code_of(load_pepper, tmp_path) == "pin_pepper_missing"
    path = install_pepper(tmp_path, PEPPER)
    assert load_pepper(tmp_path) == PEPPER and path.stat().st_mode & 0o777 == 0o600


def test_cli_pins_import(tmp_path, capsys, monkeypatch) -> None:
    import argparse

    from agent.cli.pins import add_parser
    from agent.station import NoStationData, open_database
    from tests.conftest import make_settings

    public = base64.b64encode(HO_KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()
    # Only the configured key verifies (--public-key may repeat it; see tests/test_config_hardening.py).
    monkeypatch.setenv("LOYALTY_AGENT_CARDS__PINS__BUNDLE_PUBLIC_KEY", public)
    good = tmp_path / "bundle.json"
    good.write_bytes(build_bundle(HO_KEY, version=5, stations=["*"], issued_at=datetime.now(timezone.utc),
                                  expires_at=datetime.now(timezone.utc) + timedelta(days=1),
                                  pins={"P-01": "1234"}, pepper=PEPPER))
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    base = ["pins", "import", "--data-dir", str(tmp_path / "data"), "--public-key", public]
    args = parser.parse_args(base + [str(good)])
    with pytest.raises(NoStationData):  # a bundle goes into an existing station, never a new folder
        args.func(args)
    assert not (tmp_path / "data").exists()
    open_database(make_settings(tmp_path / "data")).close()  # the station, as the agent's first start leaves it
    args = parser.parse_args(base + [str(good)])
    assert args.func(args) == 0
    assert "versión 5" in capsys.readouterr().err
    args = parser.parse_args(base + [str(good)])
    assert args.func(args) == 1  # same version again: stale
    assert "pin_bundle_stale" in capsys.readouterr().err


def test_parallel_guesses_cannot_outrun_the_lockout(pins) -> None:  # type: ignore[no-untyped-def]
    """The API verifies PINs in a thread pool; 20 guesses at once must count like 20 in a row."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    def attempt(pin: str) -> str:
        try:
            pins.verify("P-01", pin)
            return "ok"
        except AgentError as exc:
            return exc.code

    with ThreadPoolExecutor(20) as pool:
        results = Counter(pool.map(attempt, [f"{i:04d}" for i in range(5000, 5020)]))
    # max_failures=3: two plain failures, the third locks, everything after is refused unevaluated.
    assert results == Counter({"attendant_pin_invalid": 2, "attendant_locked_out": 18})
    assert code_of(pins.verify, "P-01", "1234") == "attendant_locked_out"  # even the right PIN
