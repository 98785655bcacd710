"""``check-config`` checks the files and devices the settings name, not only their syntax."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def check_config(tmp_path: Path, toml: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "agent.toml"
    config.write_text(toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_AGENT_")}
    return subprocess.run([sys.executable, "-m", "agent.cli", "check-config", "--config", str(config),
                           "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=60, check=False)


def test_missing_tls_files_and_a_plain_url_with_tls_files_are_errors(tmp_path: Path) -> None:
    # A plain URL with TLS material is refused when the settings load (start-up and check-config alike).
    r = check_config(tmp_path, f'[mqtt]\nurl = "mqtt://ho.example.com:1883"\nca_file = "{tmp_path}/ca.crt"\n'
                               f'cert_file = "{tmp_path}/st.crt"\n')
    assert r.returncode == 2
    assert "mqtt.url es mqtt:// (TCP sin cifrar) pero mqtt.ca_file, mqtt.cert_file está configurado" in r.stderr
    assert "||en:" not in r.stderr  # one language at a time
    assert "configuración válida" not in r.stderr
    # With mqtts://, check-config looks at the files themselves.
    r = check_config(tmp_path, f'[mqtt]\nurl = "mqtts://ho.example.com:8883"\nca_file = "{tmp_path}/ca.crt"\n'
                               f'cert_file = "{tmp_path}/st.crt"\n')
    assert r.returncode == 2
    assert f"error: mqtt.ca_file: el archivo {tmp_path}/ca.crt no existe" in r.stderr
    assert "error: mqtt.cert_file: el certificado de la estación y su clave (mqtt.key_file) van juntos" in r.stderr
    assert "configuración válida" not in r.stderr and "configuración con errores" in r.stderr


def test_existing_tls_material_with_mqtts_is_valid(tmp_path: Path) -> None:
    for name in ("ca.crt", "st.crt", "st.key"):
        (tmp_path / name).write_text("x")
    (tmp_path / "st.key").chmod(0o600)
    r = check_config(tmp_path, f'[mqtt]\nurl = "mqtts://ho.example.com:8883"\nca_file = "{tmp_path}/ca.crt"\n'
                               f'cert_file = "{tmp_path}/st.crt"\nkey_file = "{tmp_path}/st.key"\n')
    assert r.returncode == 0, r.stderr
    assert "configuración válida" in r.stderr and "error:" not in r.stderr


def test_a_missing_usb_device_warns_and_a_missing_fixed_port_is_an_error(tmp_path: Path) -> None:
    r = check_config(tmp_path, '[devices]\nsimulated = false\n[fingerprint]\nenabled = true\nport = "/dev/ttyAMA9"\n'
                               '[cards.magstripe]\nserial_port = "/dev/serial/by-id/usb-no-such-reader"\n')
    assert r.returncode == 2
    assert "aviso: cards.magstripe.serial_port: /dev/serial/by-id/usb-no-such-reader no existe ahora" in r.stderr
    assert "error: fingerprint.port: /dev/ttyAMA9 no existe (un puerto fijo" in r.stderr
    r = check_config(tmp_path, '[devices]\nsimulated = false\n[cards.magstripe]\n'
                               'serial_port = "/dev/serial/by-id/usb-no-such-reader"\n')
    assert r.returncode == 0 and "aviso: cards.magstripe.serial_port" in r.stderr and "configuración válida" in r.stderr


def test_a_file_the_service_cannot_read_is_an_error() -> None:
    # Root reads anything, so as root (CI) the check runs as nobody (util-linux setpriv) on a
    # file only root may read, in folders nobody may traverse.
    folder = Path(tempfile.mkdtemp(prefix="loyalty-cc-"))
    try:
        folder.chmod(0o755)
        rules = folder / "rules.json"
        rules.write_text("{}")
        rules.chmod(0o600 if os.geteuid() == 0 else 0)
        config = folder / "agent.toml"
        config.write_text(f'[loyalty]\nrules_file = "{rules}"\n')
        config.chmod(0o644)
        command = [sys.executable, "-m", "agent.cli", "check-config", "--config", str(config),
                   "--data-dir", str(folder / "data")]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid=nobody", "--regid=65534", "--clear-groups", *command]
        r = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
                           env={k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_AGENT_")})
        assert r.returncode == 2, r.stderr
        assert f"error: loyalty.rules_file: este usuario no puede leer {rules}" in r.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)
