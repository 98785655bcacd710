"""Enrollment helpers over the real app: requirements, consent ratification, enrolled counts, and
the front/back photos policy (seed 003) with the simulated document camera."""
from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.idcard.synthetic_frames import make_frame
from agent.station import Station, build_station
from tests.conftest import MARIA, make_settings


def test_requirements_per_country_and_kind(client: TestClient) -> None:
    r = client.get("/v1/enrollment/requirements")
    assert r.status_code == 200, r.text
    body = r.json()
    cl = body["countries"]["CL"]
    assert cl["kinds"]["natural"] == ["document", "first_name", "first_surname"]
    assert cl["kinds"]["juridica"] == ["document", "business_name", "tax_id"]
    assert "RUT" in cl["document_types"] and cl["tax_id_document_types"] == ["RUT"]
    assert body["photos"] == {"front_and_back_required": False}
    assert body["fingerprint"]["available"] is False  # core settings: no sensor, no simulation
    only = client.get("/v1/enrollment/requirements", params={"country": "co"}).json()
    assert list(only["countries"]) == ["CO"]
    bad = client.get("/v1/enrollment/requirements", params={"country": "XX"})
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_country"


def test_an_unchanged_consent_is_ratified_with_time_and_channel(client: TestClient) -> None:
    created = client.post("/v1/customers", json=MARIA).json()
    first = created["consents"]["offers"]
    r = client.patch(f"/v1/customers/{created['id']}", json={"consents": {
        "offers": {"value": True, "channel": "kiosk"},
        "partner_programs": [{"name": "LATAM Pass", "member_id": "123456", "channel": "kiosk"}]}})
    assert r.status_code == 200, r.text
    offers = r.json()["consents"]["offers"]
    assert offers["value"] is True and offers["channel"] == "kiosk" and offers["at"] >= first["at"]
    history = client.get(f"/v1/customers/{created['id']}/changes", params={"period": "week"}).json()["items"]
    ratified = [c for c in history if c["field"] == "consents.offers" and c["old"] is not None]
    assert len(ratified) == 1 and ratified[0]["old"]["value"] is True and ratified[0]["new"]["channel"] == "kiosk"
    assert any(c["field"] == "consents.partner_programs" and c["old"] is not None for c in history)


def test_enrolled_counts_by_day_and_attendant(client: TestClient) -> None:
    for i, attendant in enumerate(["P-1", "P-1", "P-2", None]):
        body = copy.deepcopy(MARIA)
        body["document"]["number"] = ["11.111.111-1", "22.222.222-2", "33.333.333-3", "44.444.444-4"][i]
        headers = {"X-Attendant-Id": attendant} if attendant else {}
        assert client.post("/v1/customers", json=body, headers=headers).status_code == 201
    stats = client.get("/v1/enrollment/stats")
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["total_enrolled"] == 4 and body["enrolled_in_range"] == 4
    assert len(body["days"]) == 1 and body["days"][0]["count"] == 4
    assert body["by_attendant"] == [{"attendant_id": "P-1", "pos": "pos-1", "count": 2},
                                    {"attendant_id": None, "pos": "pos-1", "count": 1},
                                    {"attendant_id": "P-2", "pos": "pos-1", "count": 1}]
    past = client.get("/v1/enrollment/stats", params={"from": "2020-01-01", "to": "2020-01-31"}).json()
    assert past["enrolled_in_range"] == 0 and past["days"] == [] and past["total_enrolled"] == 4
    for params in ({"from": "2026-02-01", "to": "2026-01-01"}, {"from": "2020-01-01", "to": "2026-01-01"}):
        bad = client.get("/v1/enrollment/stats", params=params)
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_range"


@pytest.fixture
def photos_required(tmp_path: Path) -> Iterator[tuple[TestClient, Station]]:
    settings = make_settings(tmp_path / "data", devices={"simulated": True}, enrollment={"photos_required": True},
                             station={"country": "CO", "timezone": "America/Bogota"})
    services = build_station(settings)
    token = services.tokens.create("pos-1")
    with TestClient(create_app(settings, services), base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as client:
        yield client, services
    services.close()


def test_front_and_back_photos_are_required_before_saving(photos_required: tuple[TestClient, Station]) -> None:
    client, services = photos_required
    assert client.get("/v1/enrollment/requirements").json()["photos"] == {"front_and_back_required": True}
    capture = client.post("/v1/idcard/captures").json()
    url = f"/v1/idcard/captures/{capture['capture_id']}"
    refused = client.post(f"{url}/customer", json={})
    assert refused.status_code == 422 and refused.json()["code"] == "photos_required"
    assert [e["field"] for e in refused.json()["errors"]] == ["images.front", "images.back"]
    number = capture["document"]["document_number"]
    lookup = {"document_country": "CO", "document_type": "CC", "document_number": number}
    assert client.get("/v1/customers", params=lookup).status_code == 404  # nothing saved
    # The simulated camera's frames are always judged to have glare (retake_needed), so the photos
    # are given to the capture service directly: a sharp, glare-free synthetic card.
    sharp = make_frame(random.Random(1), "co_cedula", angle=0, tilt=0.02, light=0.9, glare=0, blur=0.4, noise=2,
                       quality=90, module=3.0)
    photo = cv2.imdecode(np.frombuffer(sharp.jpeg, np.uint8), cv2.IMREAD_COLOR)
    idcard = services.idcard
    idcard.capture_image(capture["capture_id"], "front", photo)
    half = client.post(f"{url}/customer", json={})
    assert half.status_code == 422 and [e["field"] for e in half.json()["errors"]] == ["images.back"]
    idcard.capture_image(capture["capture_id"], "back", photo)
    saved = client.post(f"{url}/customer", json={})
    assert saved.status_code == 200, saved.text
    assert set(saved.json()["image_ids"]) == {"front", "back"}


def test_photos_are_the_customers_after_a_restart_until_retention_purges_them(tmp_path: Path) -> None:
    runs = iter(range(10))

    def start(retention_days: int) -> tuple[TestClient, Station]:
        settings = make_settings(tmp_path / "data", devices={"simulated": True},
                                 idcard={"image_retention_days": retention_days},
                                 station={"country": "CO", "timezone": "America/Bogota"})
        station = build_station(settings)
        token = station.tokens.create(f"pos-{next(runs)}")
        return TestClient(create_app(settings, station), base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}), station

    client, station = start(30)
    with client:
        capture = client.post("/v1/idcard/captures").json()
        sharp = make_frame(random.Random(1), "co_cedula", angle=0, tilt=0.02, light=0.9, glare=0, blur=0.4, noise=2,
                           quality=90, module=3.0)
        photo = cv2.imdecode(np.frombuffer(sharp.jpeg, np.uint8), cv2.IMREAD_COLOR)
        for side in ("front", "back"):
            station.idcard.capture_image(capture["capture_id"], side, photo)
        saved = client.post(f"/v1/idcard/captures/{capture['capture_id']}/customer", json={})
        assert saved.status_code == 200, saved.text
        customer_id = saved.json()["customer"]["id"]
    station.close()

    client, station = start(30)  # a restart: capture sessions are gone, the links are not
    with client:
        listed = client.get(f"/v1/customers/{customer_id}/photos").json()["items"]
        assert [p["side"] for p in listed] == ["back", "front"]
        front = client.get(f"/v1/customers/{customer_id}/photos/front")
        assert front.status_code == 200 and front.headers["content-type"] == "image/jpeg"
        assert front.content[:3] == b"\xff\xd8\xff"
        assert client.get("/v1/customers/nope/photos").status_code == 404
    station.close()

    client, station = start(0)  # retention 0 days: the next purge deletes them, and their links
    with client:
        station.maintenance()
        gone = client.get(f"/v1/customers/{customer_id}/photos/front")
        assert gone.status_code == 404 and gone.json()["code"] == "photo_not_found"
        assert client.get(f"/v1/customers/{customer_id}/photos").json()["items"] == []
    station.close()
