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


def test_credentials_in_the_broker_url_are_refused_not_printed(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_AGENT_")}
    r = cli("check-config", env={**env, "LOYALTY_AGENT_MQTT__URL": "mqtts://station:s3cr3t@ho.example.com:8883"})
    assert r.returncode == 2 and "mqtt.password" in r.stderr
    assert "s3cr3t" not in r.stdout + r.stderr  # nor echoed back in the error
    r = cli("check-config", env={**env, "LOYALTY_AGENT_FINGERPRINT__PASSWORD": "not-a-number-s3cr3t"})
    assert r.returncode == 2 and "fingerprint.password" in r.stderr and "s3cr3t" not in r.stderr
    r = cli("check-config", env={**env, "LOYALTY_AGENT_MQTT__URL": "ssl://station:s3cr3t@ho.example.com"})
    assert r.returncode == 2 and "s3cr3t" not in r.stdout + r.stderr
    for bad in ("http://ho.example.com", "mqtt://ho.example.com:0", "mqtt://ho.example.com:99999",
                "mqtt://ho.example.com/loyalty?x=1"):
        r = cli("check-config", env={**env, "LOYALTY_AGENT_MQTT__URL": bad})
        assert r.returncode == 2 and "mqtt://host:puerto" in r.stderr, bad


def test_status_and_lookup(tmp_path: Path) -> None:
    from agent.config import load_settings
    from agent.customers.models import CustomerCreate
    from agent.station import build_station
    from tests.conftest import MARIA

    services = build_station(load_settings(None, {"storage": {"data_dir": str(tmp_path)}}))
    services.customers.create(CustomerCreate.model_validate(MARIA), "test")
    services.close()
    status = json.loads(cli("status", "--json", "--data-dir", str(tmp_path)).stdout)
    assert status["customers"] == 1 and status["outbox"]["pending"] == 1
    found = cli("customers", "lookup", "--number", "12.345.678-5", "--data-dir", str(tmp_path))
    assert found.returncode == 0 and json.loads(found.stdout)["document"]["number"] == "123456785"
    missing = cli("customers", "lookup", "--number", "11.111.111-1", "--data-dir", str(tmp_path))
    assert missing.returncode == 1 and "no existe" in missing.stderr.lower()
    wrong = cli("customers", "lookup", "--number", "12.345.678-9", "--data-dir", str(tmp_path))
    assert wrong.returncode == 1 and "dígito verificador" in wrong.stderr


def _clean_env(**extra: str) -> dict[str, str]:
    import os

    return {**{k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_AGENT_")}, **extra}


def test_check_config_masks_secrets_but_the_agent_keeps_them(tmp_path: Path) -> None:
    secrets = {"LOYALTY_AGENT_MQTT__PASSWORD": "s3cr3t", "LOYALTY_AGENT_FINGERPRINT__PASSWORD": "987654",
               "LOYALTY_AGENT_CARDS__PCSC__CLASSIC_KEYS": '["B:A0A1A2A3A4A5", "D3F7D3F7D3F7"]'}
    r = cli("check-config", "--data-dir", str(tmp_path), env=_clean_env(LOYALTY_AGENT_MQTT__USERNAME="st-1", **secrets))
    assert r.returncode == 0, r.stderr
    for value in ("s3cr3t", "987654", "A0A1A2A3A4A5", "D3F7D3F7D3F7"):
        assert value not in r.stdout
    shown = json.loads(r.stdout)
    assert shown["mqtt"]["password"] == "********" and shown["mqtt"]["username"] == "st-1"
    assert shown["fingerprint"]["password"] == "********"
    assert shown["cards"]["pcsc"]["classic_keys"] == ["********", "********"]
    # Unset is null and a published default is shown: the technician sees that nothing was set.
    defaults = json.loads(cli("check-config", env=_clean_env()).stdout)
    assert defaults["mqtt"]["password"] is None and defaults["fingerprint"]["password"] == 0
    assert defaults["cards"]["pcsc"]["classic_keys"] == ["FFFFFFFFFFFF"]
    # The settings the agent runs with still hold the real values (and repr does not show them).
    from agent.config import load_settings

    loaded = load_settings(None, {"mqtt": {"password": "s3cr3t"}, "fingerprint": {"password": 987654}})
    assert loaded.mqtt.password == "s3cr3t" and loaded.fingerprint.password == 987654
    assert "s3cr3t" not in repr(loaded) and "987654" not in repr(loaded)


def test_commands_on_a_missing_station_fail_and_create_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "nonexist"
    bundle = tmp_path / "bundle.json"
    bundle.write_text("{}")
    for command in (["status"], ["token", "list"], ["token", "revoke", "--name", "pos-1"],
                    ["customers", "lookup", "--number", "12.345.678-5"], ["customers", "lookup", "-q", "maria"],
                    ["pins", "import", str(bundle)], ["sync", "--timeout", "1"]):
        r = cli(*command, "--data-dir", str(typo), env=_clean_env())
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        assert r.stdout == ""
        assert f"no hay datos del agente en {typo} (agent.db no existe); revise --data-dir" in r.stderr, command
        assert not typo.exists(), command
    # An existing folder without a database (the parent of the real one, say) is no station either.
    r = cli("status", "--data-dir", str(tmp_path), env=_clean_env())
    assert r.returncode == 2 and not (tmp_path / "agent.db").exists()


def test_token_create_starts_a_station_in_a_new_folder(tmp_path: Path) -> None:
    # The installer's first command, before the agent ever ran (README, docs/api.md).
    data = tmp_path / "var" / "loyalty-agent"
    r = cli("token", "create", "--name", "pos-1", "--data-dir", str(data), env=_clean_env())
    assert r.returncode == 0, r.stderr
    listed = cli("token", "list", "--data-dir", str(data), env=_clean_env())
    assert listed.returncode == 0 and json.loads(listed.stdout)["name"] == "pos-1"
    status = cli("status", "--json", "--data-dir", str(data), env=_clean_env())
    assert status.returncode == 0 and json.loads(status.stdout)["customers"] == 0


def test_one_shot_commands_print_no_warnings_of_the_running_agent(tmp_path: Path) -> None:
    # No PIN key is installed here: `run` warns about it (tests/test_service_run.py), a lookup must not.
    env = _clean_env()
    assert cli("token", "create", "--name", "pos-1", "--data-dir", str(tmp_path), env=env).returncode == 0
    for command in (["status"], ["token", "list"], ["customers", "lookup", "-q", "maria"],
                    ["customers", "lookup", "--number", "12.345.678-5"]):
        r = cli(*command, "--data-dir", str(tmp_path), env=env)
        assert r.returncode in (0, 1), (command, r.stderr)
        assert "PIN key" not in r.stderr and "warning" not in r.stderr.lower(), (command, r.stderr)
    # ...and a lookup does not create device key files either.
    assert not (tmp_path / "keys" / "biometric-templates.key").exists()
