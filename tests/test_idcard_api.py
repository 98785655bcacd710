"""The ID-card routes over the real app in simulated mode: a simulated camera shows a synthetic
Colombian cedula; the barcode pre-fills the enrollment; front/back photos are stored encrypted;
the customer is created, and a second save of the same document updates instead of failing."""
from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.station import build_station
from tests.conftest import make_settings


SEED = 7  # the simulated camera's card: fixed, so the photo checks have one right answer


@pytest.fixture
def simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from agent.simulators import camera

    monkeypatch.setattr(camera, "SimulatedCamera", functools.partial(camera.SimulatedCamera, seed=SEED))
    settings = make_settings(tmp_path / "data", devices={"simulated": True}, station={"country": "CO",
                                                                                       "timezone": "America/Bogota"})
    services = build_station(settings)
    token = services.tokens.create("pos-1")
    with TestClient(create_app(settings, services), base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as client:
        yield client
    services.close()


def test_capture_prefills_and_saves_customer_then_updates(simulated: TestClient, tmp_path: Path) -> None:
    r = simulated.post("/v1/idcard/captures")
    assert r.status_code == 201, r.text
    capture = r.json()
    document = capture["document"]
    assert document["country"] == "CO" and document["document_type"] == "CC"
    assert document["document_number"].isdigit() and document["first_surname"]
    from agent.idcard.config import IdCardSettings
    from agent.idcard.quality import assess
    from agent.simulators.camera import SimulatedCamera

    limits = IdCardSettings()
    expected = assess(SimulatedCamera(seed=SEED).read(), min_sharpness=limits.min_sharpness,
                      max_glare_fraction=limits.max_glare_fraction)
    for side in ("front", "back"):
        image = simulated.post(f"/v1/idcard/captures/{capture['capture_id']}/images/{side}")
        if expected.ok:
            assert image.status_code == 200 and image.json()["image_id"], image.text
        else:  # the checks refuse this frame: the retake answer names the problems
            assert image.status_code == 422 and image.json()["code"] == "retake_needed", image.text
    saved = simulated.post(f"/v1/idcard/captures/{capture['capture_id']}/customer",
                           json={"phones": [{"number": "310 123 4567", "kind": "mobile"}]})
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["created"] is True
    customer = body["customer"]
    assert customer["document"]["number"] == document["document_number"].lstrip("0")
    assert customer["first_surname"] == document["first_surname"]
    assert customer["phones"] == [{"number": "+573101234567", "kind": "mobile"}]
    again = simulated.post(f"/v1/idcard/captures/{capture['capture_id']}/customer", json={"email": "ana@example.com"})
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["customer"]["id"] == customer["id"] and again.json()["customer"]["email"] == "ana@example.com"
    # Images are on disk only encrypted: no JPEG/PNG signature in any stored file.
    for path in (tmp_path / "data").rglob("*"):
        if path.is_file() and "idcard" in str(path):
            head = path.read_bytes()[:4]
            assert head[:3] != b"\xff\xd8\xff" and head != b"\x89PNG"


def test_unknown_capture_is_a_clear_404(simulated: TestClient) -> None:
    r = simulated.get("/v1/idcard/captures/nope")
    assert r.status_code == 404, r.text
    assert r.json()["code"]


def test_invalid_typed_data_is_a_422_naming_the_field(simulated: TestClient) -> None:
    capture = simulated.post("/v1/idcard/captures").json()
    url = f"/v1/idcard/captures/{capture['capture_id']}/customer"
    for typed, field in (({"email": "not-an-email"}, "email"), ({"phones": "x"}, "phones")):
        r = simulated.post(url, json=typed, headers={"Accept-Language": "en"})
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "validation_failed" and [e["field"] for e in r.json()["errors"]] == [field]
    # Once created, an update with a bad value is refused the same way (CustomerPatch).
    assert simulated.post(url, json={}).status_code == 200
    r = simulated.post(url, json={"email": "still-not-an-email"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "email"
