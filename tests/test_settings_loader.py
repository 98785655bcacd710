"""Settings errors, shared by the agent and the hub: Spanish first (English with LOYALTY_LANG=en),
naming the setting, never echoing its value."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import ConfigError, load_settings
from agent.settings_loader import preferred_language
from hub.config import load_settings as load_hub_settings

REPO = Path(__file__).resolve().parent.parent


def refused(**overrides: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(None, overrides)  # type: ignore[arg-type]
    return info.value


def test_pydantic_errors_are_translated_and_name_the_setting() -> None:
    err = refused(api={"port": 0}, station={"id": "a b"}, log_level="LOUD", mqtt={"max_inflight": "many"})
    assert err.es.startswith("configuración inválida:")
    assert "api.port: debe ser mayor o igual que 1" in err.es
    assert "station.id: formato inválido" in err.es
    assert "log_level: debe ser uno de: 'DEBUG', 'INFO', 'WARNING' o 'ERROR'" in err.es
    assert "mqtt.max_inflight: debe ser un número entero" in err.es
    assert "LOUD" not in err.es and "many" not in err.es  # values are never echoed
    assert "Input should" not in err.es  # nothing left in pydantic's English
    assert err.en.startswith("invalid settings:") and "api.port: Input should be greater than or equal to 1" in err.en


def test_unknown_key_in_a_section_is_named_in_spanish() -> None:
    err = refused(api={"prot": 8787})
    assert "api.prot: clave desconocida (revise la ortografía)" in err.es


def test_our_own_validators_speak_both_languages() -> None:
    err = refused(mqtt={"url": "http://broker.example:1883"})
    assert "mqtt.url: debe ser mqtt://host:puerto o mqtts://host:puerto" in err.es
    assert "mqtt.url: must be mqtt://host:port or mqtts://host:port" in err.en
    assert "||en:" not in err.es and "||en:" not in err.en and "broker.example" not in err.es + err.en
    err = refused(fingerprint={"baud": 1234})
    assert "la velocidad debe ser 9600 x N" in err.es and "baud must be 9600 x N" in err.en


def test_missing_file_and_unknown_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "nope.toml")
    assert info.value.es == f"no existe el archivo de configuración: {tmp_path / 'nope.toml'}"
    monkeypatch.setenv("LOYALTY_AGENT_MQTT_URL", "mqtt://x:1883")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert "variable de entorno desconocida LOYALTY_AGENT_MQTT_URL" in info.value.es
    assert "¿quiso decir LOYALTY_AGENT_MQTT__...?" in info.value.es
    assert "did you mean LOYALTY_AGENT_MQTT__...?" in info.value.en


def test_the_hub_loads_the_same_way() -> None:
    with pytest.raises(ConfigError) as info:
        load_hub_settings(None, {"ingest": {"workers": 0}, "mqtt": {"url": "mqtt://u:p@h:1883"}}, environ={})
    assert "ingest.workers: debe ser mayor o igual que 1" in info.value.es
    assert "mqtt.url: no debe contener usuario ni contraseña" in info.value.es
    assert "u:p@" not in info.value.es


def test_language_is_chosen_by_loyalty_lang_not_the_locale() -> None:
    assert preferred_language({"LANG": "en_US.UTF-8"}) == "es"
    assert preferred_language({"LOYALTY_LANG": "en"}) == "en"


@pytest.mark.parametrize(("lang", "expected"), [
    ("", "error de configuración: configuración inválida:\n  api.port: debe ser menor o igual que 65535"),
    ("en", "configuration error: invalid settings:\n  api.port: Input should be less than or equal to 65535"),
])
def test_the_cli_prints_one_language(tmp_path: Path, lang: str, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_")}
    env.update({"LOYALTY_AGENT_API__PORT": "70000", "LOYALTY_LANG": lang})
    r = subprocess.run([sys.executable, "-m", "agent.cli", "check-config", "--data-dir", str(tmp_path)],
                       capture_output=True, text=True, cwd=REPO, env=env, timeout=60, check=False)
    assert r.returncode == 2
    assert expected in r.stderr
