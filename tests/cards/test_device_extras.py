"""pyscard and evdev are optional extras: a configured reader whose binding is missing is a
failed reader with a Spanish message saying what to install, never an ImportError traceback
or a stopped agent.

The missing binding is made real for the test by ``sys.modules[name] = None``, which makes
Python's import system raise ImportError exactly as on a machine without the package.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.drivers.extras import MissingExtra
from agent.station import build_station as build_services
from tests.conftest import make_settings


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Make the bindings unimportable; drivers already imported with them are imported again."""
    def hide(*modules: str) -> None:
        for name in list(sys.modules):
            if any(name == m or name.startswith(m + ".") for m in (*modules, "agent.drivers.pcsc_reader")):
                monkeypatch.delitem(sys.modules, name)
        for m in modules:
            monkeypatch.setitem(sys.modules, m, None)
    return hide


def test_pcsc_reader_without_pyscard_is_a_failed_reader_that_says_what_to_install(
        tmp_path: Path, without, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    without("smartcard")
    caplog.set_level(logging.ERROR)
    settings = make_settings(tmp_path / "data", cards={"pcsc": {"enabled": True}})
    services = build_services(settings)
    try:
        services.start()  # must not raise
        with TestClient(create_app(settings, services), base_url="http://127.0.0.1") as client:
            health = client.get("/v1/health").json()
    finally:
        services.close()
    cards = health["components"]["cards"]
    assert cards["failed_readers"] == {"PcscCardReader": "MissingExtra"}
    assert "PcscCardReader" in cards["readers"]
    assert "extra [pcsc]" in caplog.text and "libpcsclite-dev" in caplog.text
    assert "Traceback" not in caplog.text


def test_importing_the_pcsc_driver_without_pyscard_raises_missing_extra(without) -> None:  # type: ignore[no-untyped-def]
    without("smartcard")
    with pytest.raises(MissingExtra) as info:
        import agent.drivers.pcsc_reader  # noqa: F401
    assert info.value.extra == "pcsc" and isinstance(info.value, ImportError)
    assert str(info.value).startswith("el lector de tarjetas PC/SC necesita el módulo smartcard.scard")


def test_wedge_reader_without_evdev_fails_at_start_instead_of_retrying(tmp_path: Path, without) -> None:  # type: ignore[no-untyped-def]
    without("evdev")
    from agent.drivers.magstripe_evdev import EvdevMagstripeReader

    reader = EvdevMagstripeReader(str(tmp_path / "kbd"), lambda record: None)
    with pytest.raises(MissingExtra) as info:
        reader.start()
    assert "extra [evdev]" in str(info.value) and "make devices" in str(info.value)
    assert reader._thread is None  # no retry thread left behind


def test_the_default_install_does_not_import_device_bindings(tmp_path: Path, without) -> None:  # type: ignore[no-untyped-def]
    # No reader configured: the agent builds and starts with both bindings missing.
    without("smartcard", "evdev")
    services = build_services(make_settings(tmp_path / "data"))
    try:
        services.start()
    finally:
        services.close()
