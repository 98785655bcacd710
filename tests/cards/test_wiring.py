"""A card reader that is missing at start-up is reported, and never stops the agent."""
from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.services import build_services
from tests.conftest import make_settings


def test_missing_wedge_reader_is_reported_in_health_and_the_agent_runs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", cards={"magstripe": {"evdev_device": str(tmp_path / "no-such-kbd")}})
    services = build_services(settings)
    try:
        services.start()  # must not raise
        with TestClient(create_app(settings, services)) as client:
            health = client.get("/v1/health").json()
        cards = health["components"]["cards"]
        assert health["status"] == "degraded"
        assert cards["state"] == "error" and "EvdevMagstripeReader" in cards["failed_readers"]
    finally:
        services.close()
