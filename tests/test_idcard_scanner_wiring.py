"""Hand-held ID scanners in the running station: ``[idcard.scanners]`` builds the part, it starts and
stops with the station, reads reach the POS as ``idcard.scanned`` events and ``/v1/idcard/scans``,
a scan enrolls like a capture, and health/devices report the scanners.

The MRZ reader is driven over a real pty with the bytes a reader sends. The wedge scanner has no
real input device here (no uinput in CI, see tests/cards/test_magstripe.py): its part is built and
reported missing, and its decoding is tested with recorded key events in test_idcard_scanners.py.
"""
from __future__ import annotations

import os
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.idcard.samples import SyntheticPerson, td1_mrz
from agent.ops.device_states import device_states
from agent.station import Station, build_station
from tests.conftest import make_settings, wait_until

CO = SyntheticPerson("CO", "1047425328", "ANA", None, "GIL", None, "F", "1990-08-22", None)


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


@pytest.fixture
def station(tmp_path: Path, pty_pair: tuple[int, str]) -> Iterator[Station]:
    settings = make_settings(tmp_path / "data", station={"country": "CO", "timezone": "America/Bogota"},
                             idcard={"scanners": {"mrz_serial_port": pty_pair[1],
                                                  "wedge_device": str(tmp_path / "no-such-event-kbd")}})
    built = build_station(settings)
    built.start()
    yield built
    built.close()


@pytest.fixture
def client(station: Station) -> Iterator[TestClient]:
    token = station.tokens.create("pos-1")
    with TestClient(create_app(station.settings, station), base_url="http://127.0.0.1",
                    headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


def _next_scan_event(client: TestClient, after: int) -> dict[str, Any]:
    body = client.get("/v1/events", params={"after": after, "timeout": 5}).json()
    scans = [e for e in body["events"] if e["type"] == "idcard.scanned"]
    assert scans, body
    return scans[0]


def test_an_mrz_read_on_the_serial_port_reaches_the_pos_and_enrolls(station: Station, client: TestClient,
                                                                    pty_pair: tuple[int, str]) -> None:
    master, _ = pty_pair
    scanners = station.idcard_scanners
    assert scanners is not None and wait_until(lambda: scanners.readers["mrz_reader"].connected.is_set(), 5)
    lines = td1_mrz(CO).split(b"\n")
    os.write(master, lines[0] + b"\r" + lines[1] + b"\r" + lines[2].rstrip(b"<") + b"\r")
    event = _next_scan_event(client, 0)
    data = event["data"]
    assert (data["source"], data["status"], data["format"], data["code"]) == ("mrz_reader", "read", "MRZ", None)
    assert "GIL" not in str(data) and CO.number not in str(data)  # no person in the event stream
    scan = client.get(f"/v1/idcard/scans/{data['scan_id']}").json()
    assert scan["document"]["document_number"] == CO.number and scan["document"]["document_type"] == "CC"
    assert client.get("/v1/idcard/scans/latest").json()["scan_id"] == data["scan_id"]
    saved = client.post(f"/v1/idcard/captures/{data['scan_id']}/customer", json={"email": "ana@example.com"})
    assert saved.status_code == 200, saved.text
    assert saved.json()["created"] is True and saved.json()["customer"]["first_surname"] == "GIL"

    # A damaged MRZ (a check digit changed): refused with a stable code, Spanish or English.
    broken = bytearray(lines[1])
    broken[6] = ord("0") if broken[6] != ord("0") else ord("1")  # birth date check digit
    os.write(master, lines[0] + b"\r" + bytes(broken) + b"\r" + lines[2] + b"\r")
    refused = _next_scan_event(client, event["seq"])["data"]
    assert refused["status"] == "refused" and refused["code"] == "invalid_id_payload"
    es = client.get(f"/v1/idcard/scans/{refused['scan_id']}").json()
    en = client.get(f"/v1/idcard/scans/{refused['scan_id']}", headers={"Accept-Language": "en"}).json()
    assert es["document"] is None and es["message"] != en["message"] and en["message"]
    nothing = client.post(f"/v1/idcard/captures/{refused['scan_id']}/customer", json={})
    assert nothing.status_code == 409 and nothing.json()["code"] == "no_document_read"
    assert client.get("/v1/idcard/scans/0123456789abcdef01234567").json()["code"] == "unknown_scan"
    gone = client.post("/v1/idcard/captures/0123456789abcdef01234567/customer", json={})
    assert gone.status_code == 404 and gone.json()["code"] == "unknown_scan"  # no camera here: not a 503


def test_health_and_devices_report_each_scanner(station: Station, client: TestClient) -> None:
    scanners = station.idcard_scanners
    assert scanners is not None
    assert wait_until(lambda: scanners.readers["mrz_reader"].connected.is_set(), 5)
    states = {d.id: d for d in device_states(station)}
    assert states["idcard_mrz_reader"].state == "up"
    # The wedge scanner's device does not exist: down (ENOENT), or not started where evdev is missing.
    assert wait_until(lambda: {d.id: d for d in device_states(station)}["idcard_wedge_scanner"].state == "down", 5)
    health = client.get("/v1/health").json()
    part = health["components"]["idcard_scanners"]
    assert part["state"] == "error" and "wedge_scanner" in part["failed_scanners"]
    assert "mrz_reader" not in part["failed_scanners"]
    assert health["devices"]["idcard_mrz_reader"]["state"] == "up"
    assert [r["detail"]["device"] for r in health["reasons"] if r["code"] == "device_missing"] == [
        "idcard_wedge_scanner"]


def test_scanners_are_off_by_default_and_their_routes_say_so(client: TestClient, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "plain")
    plain = build_station(settings)
    try:
        assert plain.idcard_scanners is None
        token = plain.tokens.create("pos-1")
        with TestClient(create_app(settings, plain), base_url="http://127.0.0.1",
                        headers={"Authorization": f"Bearer {token}"}) as other:
            answer = other.get("/v1/idcard/scans/latest")
        assert answer.status_code == 503 and answer.json()["code"] == "idcard_scanners_disabled"
    finally:
        plain.close()


def test_doctor_checks_each_configured_scanner_node(station: Station, pty_pair: tuple[int, str]) -> None:
    from agent.ops.doctor import FAIL, OK, run_checks

    checks = {c.code: c for c in run_checks(station.settings, network=False) if c.code.startswith("device_idcard")}
    assert checks["device_idcard_mrz_reader"].status == OK and pty_pair[1] in checks["device_idcard_mrz_reader"].message
    assert checks["device_idcard_wedge_scanner"].status == FAIL
