"""A card reader that is missing at start-up is reported, and never stops the agent."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.station import build_station
from tests.conftest import make_settings


def test_missing_wedge_reader_is_reported_in_health_and_the_agent_runs(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", cards={"magstripe": {"evdev_device": str(tmp_path / "no-such-kbd")}})
    services = build_station(settings)
    try:
        services.start()  # must not raise
        with TestClient(create_app(settings, services), base_url="http://127.0.0.1") as client:
            health = client.get("/v1/health").json()
        cards = health["components"]["cards"]
        assert health["status"] == "degraded"
        assert cards["state"] == "error" and "EvdevMagstripeReader" in cards["failed_readers"]
    finally:
        services.close()


def test_missing_pin_key_is_warned_when_the_agent_starts_not_when_its_parts_are_built(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # CLI commands and tools build parts without starting them; the warning is about the running station.
    caplog.set_level(logging.WARNING)
    services = build_station(make_settings(tmp_path / "data"))
    try:
        assert "[pin_key_missing]" not in caplog.text
        services.start()
        assert "clave de PIN de la estación no instalada" in caplog.text and "[pin_key_missing]" in caplog.text
    finally:
        services.close()
