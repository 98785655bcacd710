"""Signed configuration: the station applies only documents signed by head office's key.

Against a real Mosquitto (the downlink path a forged message would take); the verifier's
parser is also fuzzed with hypothesis.
"""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import AgentError
from agent.loyalty.requests import SimulateRequest
from agent.queue.signed_config import ConfigVerifier, sign_config
from agent.station import build_station
from tests.conftest import wait_until as wait
from tests.fakes.head_office import FakeHeadOffice
from tests.fakes.mosquitto import Mosquitto
from tests.signing import HEAD_OFFICE_KEY, signed
from tests.sync.conftest import STATION, make_services, sync_settings

CONFIG = f"loyalty/v1/stations/{STATION}/config"
ATTACKER = Ed25519PrivateKey.from_private_bytes(bytes(range(100, 132)))


def fuel_program(version: int, points_per_litre: str) -> dict:  # type: ignore[type-arg]
    return {"version": version, "data": {"version": f"p{version}", "rules": [
        {"kind": "earn", "rule_id": "fuel", "article_group": "FUEL", "basis": "per_unit", "points": points_per_litre}]}}


def points_for_40_litres(services) -> int:  # type: ignore[no-untyped-def]
    request = SimulateRequest.model_validate(
        {"lines": [{"sku": "DIESEL", "article_group": "FUEL", "quantity": "40", "amount": "40000"}]})
    return services.loyalty.simulate(request).total_points


def errors_with(head_office: FakeHeadOffice, code: str) -> list[dict]:  # type: ignore[type-arg]
    return [e for e in head_office.of_topic("/config/errors") if e["code"] == code]


def test_forged_rules_are_refused_and_the_40_litre_sale_still_earns_40(tmp_path: Path, broker: Mosquitto,
                                                                       head_office: FakeHeadOffice) -> None:
    services = make_services(tmp_path, broker.port)
    services.start()
    sync = services.sync
    try:
        assert wait(lambda: sync.status()["broker"]["state"] == "connected")
        head_office.publish(f"{CONFIG}/earning_rules", signed("earning_rules", fuel_program(1, "1")), retain=True)
        assert wait(lambda: sync.status()["downlink"].get("earning_rules", {}).get("version") == 1)
        assert points_for_40_litres(services) == 40

        # 1000 points per litre: signed with another key, unsigned, and a genuine signature
        # over the genuine program with the points edited afterwards.
        forged = fuel_program(2, "1000")
        head_office.publish(f"{CONFIG}/earning_rules", sign_config(ATTACKER, "earning_rules", forged), retain=True)
        assert wait(lambda: errors_with(head_office, "config_bad_signature"))
        head_office.publish(f"{CONFIG}/earning_rules", json.dumps(forged), retain=True)
        assert wait(lambda: errors_with(head_office, "config_unsigned"))
        tampered = json.loads(signed("earning_rules", fuel_program(2, "1")))
        tampered["payload"]["data"]["rules"][0]["points"] = "1000"
        head_office.publish(f"{CONFIG}/earning_rules", json.dumps(tampered), retain=True)
        assert wait(lambda: len(errors_with(head_office, "config_bad_signature")) == 2)

        assert sync.status()["downlink"]["earning_rules"]["version"] == 1
        assert points_for_40_litres(services) == 40
        assert services.loyalty.rules().program.version == "p1"
    finally:
        services.close()


def test_directory_is_signed_too_and_a_signature_is_bound_to_its_kind(tmp_path: Path, broker: Mosquitto,
                                                                      head_office: FakeHeadOffice) -> None:
    delta = {"seq": 5, "as_of": "2026-03-14T06:00:00Z", "tiers": [{"tier_id": "GOLD", "name": "Oro", "multiplier": "1.5"}],
             "rewards": [{"reward_id": "MUG", "name": "Taza", "points_cost": 900, "delivery": "immediate"}]}
    services = make_services(tmp_path, broker.port)
    services.start()
    sync = services.sync
    try:
        assert wait(lambda: sync.status()["broker"]["state"] == "connected")
        head_office.publish(f"{CONFIG}/directory", json.dumps(delta), retain=True)
        assert wait(lambda: errors_with(head_office, "config_unsigned"))
        # A genuine head-office signature, but made for another kind.
        head_office.publish(f"{CONFIG}/directory", signed("earning_rules", delta), retain=True)
        assert wait(lambda: errors_with(head_office, "config_wrong_kind"))
        assert "directory" not in sync.status()["downlink"]
        assert services.loyalty.catalog() == []

        head_office.publish(f"{CONFIG}/directory", signed("directory", delta), retain=True)
        assert wait(lambda: sync.status()["downlink"].get("directory", {}).get("version") == 5)
        assert [r["reward_id"] for r in services.loyalty.catalog()] == ["MUG"]
    finally:
        services.close()


def test_transition_flag_accepts_unsigned_but_still_checks_signed_documents(tmp_path: Path, broker: Mosquitto,
                                                                           head_office: FakeHeadOffice) -> None:
    settings = sync_settings(tmp_path, broker.port)
    settings = settings.model_copy(update={"sync": settings.sync.model_copy(update={"require_signed_config": False})})
    services = build_station(settings)
    services.start()
    sync = services.sync
    try:
        assert wait(lambda: sync.status()["broker"]["state"] == "connected")
        head_office.publish(f"{CONFIG}/earning_rules", json.dumps(fuel_program(1, "2")), retain=True)
        assert wait(lambda: sync.status()["downlink"].get("earning_rules", {}).get("version") == 1)
        assert points_for_40_litres(services) == 80
        head_office.publish(f"{CONFIG}/earning_rules", sign_config(ATTACKER, "earning_rules", fuel_program(2, "1000")),
                            retain=True)
        assert wait(lambda: errors_with(head_office, "config_bad_signature"))
        assert points_for_40_litres(services) == 80
    finally:
        services.close()


def test_a_station_without_the_public_key_refuses_signed_documents_by_name() -> None:
    verifier = ConfigVerifier(None, required=True)
    with pytest.raises(AgentError) as caught:
        verifier.unwrap("earning_rules", signed("earning_rules", fuel_program(1, "1")))
    assert caught.value.code == "config_no_key"


def test_verifier_returns_exactly_the_signed_payload() -> None:
    verifier = ConfigVerifier(HEAD_OFFICE_KEY.public_key())
    program = fuel_program(3, "1.5")
    assert json.loads(verifier.unwrap("earning_rules", signed("earning_rules", program))) == program
    assert Decimal(program["data"]["rules"][0]["points"]) == Decimal("1.5")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=300),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                              lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                                  st.sampled_from(["format", "kind", "payload", "signature", "x"]), inner, max_size=5),
                              max_leaves=12).map(lambda v: json.dumps(v).encode())))
def test_verifier_refuses_arbitrary_input_with_a_named_error(raw: bytes) -> None:
    verifier = ConfigVerifier(HEAD_OFFICE_KEY.public_key())
    with pytest.raises((AgentError, ValueError)) as caught:
        verifier.unwrap("earning_rules", raw)
    if isinstance(caught.value, AgentError):
        assert caught.value.code in {"config_unsigned", "config_bad_signature"}


def test_the_documented_signed_example_verifies_with_the_test_key() -> None:
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "head-office.md").read_text(encoding="utf-8")
    example = re.search(r"```json signed-config.json\n(.*?)```", text, re.DOTALL)
    assert example is not None
    inner = ConfigVerifier(HEAD_OFFICE_KEY.public_key()).unwrap("earning_rules", example.group(1).strip().encode())
    assert json.loads(inner)["version"] == 8
