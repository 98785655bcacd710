"""The station's side of the website's enrollment requests (head office's side, end to end, is
tests/hub/test_enrollment_requests.py): stored from directory deltas, listed for the attendant
by document, removed by id, purged at ``expires_at``, and refused whole when malformed (why
head office checks each request with this model before sending it)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from agent.loyalty.directory import DirectoryDelta, apply_delta
from tests.loyalty_fixtures import make_app

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def request(request_id: str, number: str, *, age_days: int = 1, **extra: Any) -> dict[str, Any]:
    made = NOW - timedelta(days=age_days)
    return {"request_id": request_id, "requested_at": made.isoformat(), "expires_at": (made + timedelta(days=90)).isoformat(),
            "document_country": "CL", "document_type": "RUT", "document_number": number, "first_name": "Jorge",
            "surname": "Soto", "phone": None, "email": None, "preferred_station": "ST01", **extra}


def delta(seq: int, **fields: Any) -> DirectoryDelta:
    return DirectoryDelta.model_validate({"seq": seq, "as_of": NOW.isoformat(), **fields})


def test_requests_are_stored_listed_by_document_removed_and_purged(tmp_path: Path) -> None:
    app, token, _, _, db = make_app(tmp_path, NOW)

    def apply(d: DirectoryDelta) -> None:
        db.write(lambda c: apply_delta(c, d, "ST01"))

    apply(delta(10, enrollment_requests=[request("web-1", "9.876.543-3"), request("web-2", "7.654.321-6"),
                                         request("web-old", "11.111.111-1", age_days=91)]))
    client = TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"})
    listed = client.get("/v1/enrollment/requests").json()["requests"]
    assert [r["request_id"] for r in listed] == ["web-1", "web-2"]  # the 91-day-old one was purged on arrival
    assert db.read(lambda c: c.execute("SELECT count(*) FROM loyalty_enrollment_requests").fetchone()[0]) == 2
    # Typed any way the card shows it: the same compact form matches.
    for typed in ("9.876.543-3", "98765433", "9876543-3"):
        got = client.get("/v1/enrollment/requests", params={"country": "cl", "type": "rut", "number": typed}).json()
        assert [r["request_id"] for r in got["requests"]] == ["web-1"], typed
    assert client.get("/v1/enrollment/requests", params={"type": "RUT", "number": "1"}).status_code == 422
    apply(delta(11, removed_enrollment_requests=["web-1"]))
    assert [r["request_id"] for r in client.get("/v1/enrollment/requests").json()["requests"]] == ["web-2"]


def test_a_request_the_model_refuses_refuses_the_whole_delta() -> None:
    with pytest.raises(ValidationError):
        delta(12, enrollment_requests=[request("web-3", "9.876.543-3", email="not-an-address")])
    with pytest.raises(ValidationError):  # an agent predating the field would refuse it the same way
        DirectoryDelta.model_validate({"seq": 1, "as_of": NOW.isoformat(), "unknown_field": []})
