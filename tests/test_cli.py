"""The loyalty-agent command, run as a real subprocess where the output contract matters."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent import __version__


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def test_version() -> None:
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"loyalty-agent {__version__}"


def test_token_create_prints_only_the_token_and_stores_only_a_hash(tmp_path: Path) -> None:
    r = cli("token", "create", "--name", "pos-1", "--data-dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.startswith("lat_") and "\n" not in token and len(token) > 40
    assert token.encode() not in (tmp_path / "agent.db").read_bytes()
    again = cli("token", "create", "--name", "pos-1", "--data-dir", str(tmp_path))
    assert again.returncode == 1 and "ya existe" in again.stderr.lower() and again.stdout == ""


def test_check_config_rejects_unknown_keys(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text("[api]\nprot = 9000\n")
    r = cli("check-config", "--config", str(bad))
    assert r.returncode == 2 and "prot" in r.stderr
    good = tmp_path / "good.toml"
    good.write_text('[api]\nport = 9000\n[station]\ncountry = "CO"\ntimezone = "America/Bogota"\n')
    r = cli("check-config", "--config", str(good))
    assert r.returncode == 0
    effective = json.loads(r.stdout)
    assert effective["api"]["port"] == 9000 and effective["station"]["country"] == "CO"


def test_a_misspelt_environment_variable_is_an_error_not_ignored(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_AGENT_")}
    r = cli("check-config", env={**env, "LOYALTY_AGENT_MQTT_URL": "mqtt://head-office:1883"})
    assert r.returncode == 2
    assert "LOYALTY_AGENT_MQTT_URL" in r.stderr and "LOYALTY_AGENT_MQTT__" in r.stderr
    r = cli("check-config", env={**env, "LOYALTY_AGENT_MQTT__URL": "mqtt://head-office:1883",
                                 "LOYALTY_AGENT_LOG_LEVEL": "DEBUG"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["mqtt"]["url"] == "mqtt://head-office:1883"


def test_a_misspelt_required_field_or_country_is_refused_by_check_config(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text('[enrollment.required_fields]\nCL = ["first_name", "frist_surname"]\n')
    r = cli("check-config", "--config", str(bad))
    assert r.returncode == 2 and "frist_surname" in r.stderr
    bad.write_text('[enrollment.required_fields]\nXX = ["first_name"]\n')
    r = cli("check-config", "--config", str(bad))
    assert r.returncode == 2 and "XX" in r.stderr
    bad.write_text('[enrollment.required_fields]\nco = ["first_name", "birth_date"]\n')
    r = cli("check-config", "--config", str(bad))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["enrollment"]["required_fields"] == {"CO": ["first_name", "birth_date"]}


def test_status_and_lookup(tmp_path: Path) -> None:
    from agent.config import load_settings
    from agent.customers.models import CustomerCreate
    from agent.services import build_services
    from tests.conftest import MARIA

    services = build_services(load_settings(None, {"storage": {"data_dir": str(tmp_path)}}))
    services.customers.create(CustomerCreate.model_validate(MARIA), "test")
    services.close()
    status = json.loads(cli("status", "--data-dir", str(tmp_path)).stdout)
    assert status["customers"] == 1 and status["outbox"]["pending"] == 1
    found = cli("customers", "lookup", "--number", "12.345.678-5", "--data-dir", str(tmp_path))
    assert found.returncode == 0 and json.loads(found.stdout)["document"]["number"] == "123456785"
    missing = cli("customers", "lookup", "--number", "11.111.111-1", "--data-dir", str(tmp_path))
    assert missing.returncode == 1 and "no existe" in missing.stderr.lower()
