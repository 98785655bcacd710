"""Configuration that would silently weaken the station is refused: TLS files or a password with
a plain mqtt:// URL, empty flags, and a PIN bundle key passed on the command line.

Through the real CLI (a subprocess), as a technician types it.
"""
from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from agent.cards.pin_bundle import build_bundle
from agent.config import ConfigError, load_settings

SECRET = "s3cr3t-broker-pass"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("setting", [{"password": SECRET}, {"ca_file": "/etc/ssl/ca.pem"},
                                     {"cert_file": "/etc/st.crt", "key_file": "/etc/st.key"}])
def test_tls_material_with_a_plain_url_is_refused(setting: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, {"mqtt": {"url": "mqtt://broker.example:1883", **setting}})
    text = str(info.value)
    assert "mqtt://" in text and "mqtts://" in text and "allow_plaintext" in text
    assert SECRET not in text and "broker.example" not in text  # the values are never echoed
    # An explicit choice is respected; mqtts:// is what it should be.
    load_settings(None, {"mqtt": {"url": "mqtt://broker.example:1883", "allow_plaintext": True, **setting}})
    load_settings(None, {"mqtt": {"url": "mqtts://broker.example:8883", **setting}})


def test_check_config_and_run_refuse_a_password_over_plain_tcp(tmp_path: Path) -> None:
    env = {"LOYALTY_AGENT_MQTT__URL": "mqtt://127.0.0.1:1", "LOYALTY_AGENT_MQTT__PASSWORD": SECRET}
    for args in (("check-config",), ("run", "--data-dir", str(tmp_path / "data"))):
        r = cli(*args, env=env)
        assert r.returncode == 2, (args, r.stderr)
        assert "mqtt.password" in r.stderr and "allow_plaintext" in r.stderr and SECRET not in r.stderr + r.stdout
    assert not (tmp_path / "data").exists()  # refused before anything was created


@pytest.mark.parametrize("flag", ["--station-id", "--mqtt-url", "--host", "--data-dir", "--config"])
def test_empty_flags_are_refused_not_replaced_by_defaults(tmp_path: Path, flag: str) -> None:
    args = ["run", flag, ""] if flag != "--data-dir" else ["run", "--data-dir", " "]
    if flag != "--data-dir":
        args += ["--data-dir", str(tmp_path / "data")]
    r = cli(*args)
    assert r.returncode == 2 and "no puede estar vacío" in r.stderr and flag in r.stderr, r.stderr
    assert not (tmp_path / "data").exists()


def _key_text(key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def test_pins_import_verifies_only_with_head_office_key_and_a_key_change_is_its_own_command(tmp_path: Path) -> None:
    head_office, attacker = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    data = tmp_path / "data"
    env = {"LOYALTY_AGENT_CARDS__PINS__BUNDLE_PUBLIC_KEY": _key_text(head_office),
           "LOYALTY_AGENT_STATION__ID": "st-1"}
    assert cli("token", "create", "--name", "pos-1", "--data-dir", str(data), env=env).returncode == 0
    now = datetime.now(timezone.utc)

    def bundle(key: Ed25519PrivateKey, version: int) -> Path:
        path = tmp_path / f"bundle-{version}.json"
        path.write_bytes(build_bundle(key, version=version, stations=["st-1"], issued_at=now - timedelta(hours=1),
                                      expires_at=now + timedelta(days=1), pins={"P-01": "1234"}, pepper=b"\0" * 32))
        return path

    forged = bundle(attacker, 2**63 - 1)
    r = cli("pins", "import", str(forged), "--public-key", _key_text(attacker), "--data-dir", str(data), env=env)
    assert r.returncode == 2 and "pins set-key" in r.stderr, r.stderr
    r = cli("pins", "import", str(forged), "--data-dir", str(data), env=env)
    assert r.returncode == 1 and "pin_bundle" in r.stderr  # the signature does not verify
    good = bundle(head_office, 1)
    assert cli("pins", "import", str(good), "--data-dir", str(data), env=env).returncode == 0
    # Rotation: an explicit command, reported to head office; then only the new key verifies.
    rotated = Ed25519PrivateKey.generate()
    r = cli("pins", "set-key", _key_text(rotated), "--data-dir", str(data), env=env)
    assert r.returncode == 0, r.stderr
    assert cli("pins", "import", str(bundle(head_office, 2)), "--data-dir", str(data), env=env).returncode == 1
    assert cli("pins", "import", str(bundle(rotated, 3)), "--data-dir", str(data), env=env).returncode == 0
    import sqlite3

    conn = sqlite3.connect(data / "agent.db")
    types = [row[0] for row in conn.execute("SELECT type FROM outbox WHERE type LIKE 'pins.%' ORDER BY seq")]
    conn.close()
    assert types == ["pins.bundle_imported", "pins.key_changed", "pins.bundle_imported"]


def test_the_disk_warning_must_come_before_the_refusal() -> None:
    """storage.min_free_bytes refuses writes (507); monitoring.disk_free_min_bytes warns (disk_low):
    one relation between the two, checked, so the station never refuses before it warned."""
    from agent.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="disk_free_min_bytes debe ser al menos storage.min_free_bytes"):
        load_settings(None, {"storage": {"min_free_bytes": 300 * 1024 * 1024}})
    ok = load_settings(None, {"storage": {"min_free_bytes": 300 * 1024 * 1024},
                              "monitoring": {"disk_free_min_bytes": 400 * 1024 * 1024}})
    assert ok.monitoring.disk_free_min_bytes > ok.storage.min_free_bytes
    assert load_settings(None, {"storage": {"min_free_bytes": None}}).storage.min_free_bytes is None
