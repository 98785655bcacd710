"""Shared fixtures: a real SQLite store in a temporary folder and the real FastAPI app."""
from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from agent.api.app import create_app
from agent.config import Settings, load_settings
from agent.station import Station, build_station


# No per-example deadline: this 2-core machine is shared and a slow example is not a bug.
# In CI the examples are derandomized, so a red build is reproducible rather than a dice roll;
# local runs keep exploring new inputs.
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, database=None)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "dev")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(data_dir: Path, **sections: dict[str, Any]) -> Settings:
    # Core tests run without simulated devices; device tests enable them explicitly.
    overrides: dict[str, Any] = {"storage": {"data_dir": str(data_dir)}, "devices": {"simulated": False}}
    overrides.update(sections)
    return load_settings(None, overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
def services(settings: Settings) -> Iterator[Station]:
    built = build_station(settings)
    yield built
    built.close()


@pytest.fixture
def token(services: Station) -> str:
    return services.tokens.create("pos-1")


@pytest.fixture
def client(settings: Settings, services: Station, token: str) -> Iterator[TestClient]:
    app = create_app(settings, services)
    with TestClient(app, base_url="http://127.0.0.1", headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


MARIA: dict[str, Any] = {
    "document": {"country": "CL", "type": "RUT", "number": "12.345.678-5"},
    "kind": "natural", "first_name": "María", "second_name": None,
    "first_surname": "Peña", "second_surname": "Soto", "birth_date": "1990-08-22", "sex": "F",
    "phones": [{"number": "+56 9 8765 4321", "kind": "mobile"}], "email": "maria@example.com",
    "consents": {"offers": True, "partner_programs": [{"name": "LATAM Pass", "member_id": "123456"}]},
}


def wait_until(predicate: Any, timeout: float = 30.0, *, tolerate: tuple[type[BaseException], ...] = ()) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` passes (for asynchronous effects:
    a broker delivering, a thread committing). Exceptions in ``tolerate`` count as "not yet"."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return True
        except tolerate:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
