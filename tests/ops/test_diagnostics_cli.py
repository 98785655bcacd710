"""``loyalty-agent status``, ``devices`` and ``doctor`` as a technician runs them: real processes,
a real running agent, a real Mosquitto (plain and TLS). USB hardware cannot be plugged in here:
``devices`` is checked against a fake sysfs and /dev tree (a real pty as the serial port) and
once against this machine's real buses."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.config import load_settings
from agent.ops.doctor import FAIL, OK, run_checks
from agent.ops.usb_scan import scan
from tests.conftest import free_port, wait_until
from tests.fakes.mosquitto import Mosquitto, mosquitto_binary
from tests.fakes.pki import TestCA

needs_mosquitto = pytest.mark.skipif(mosquitto_binary() is None, reason="mosquitto is not installed")


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent.cli", *args], capture_output=True, text=True, timeout=60,
                          env=env)


def _env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_AGENT_")}, **extra}


@needs_mosquitto
def test_status_reads_broker_and_devices_from_the_running_agent(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    data = tmp_path / "data"
    env = _env(LOYALTY_AGENT_API__PORT=str(free_port()), LOYALTY_AGENT_MQTT__URL=broker.url,
               LOYALTY_AGENT_DEVICES__SIMULATED="false", LOYALTY_AGENT_FINGERPRINT__ENABLED="true",
               LOYALTY_AGENT_FINGERPRINT__PORT=str(tmp_path / "no-such-tty"))
    assert cli("token", "create", "--name", "pos-1", "--data-dir", str(data), env=env).returncode == 0
    agent = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def running() -> bool:
            report = json.loads(cli("status", "--json", "--data-dir", str(data), env=env).stdout)
            health = report["agent"]["health"]
            return bool(health) and health["components"]["sync"]["broker"] == "connected" and \
                health["devices"]["fingerprint"]["state"] == "down"

        assert wait_until(running, 30)
        text = cli("status", "--data-dir", str(data), env=env)
        assert text.returncode == 0, text.stderr
        for line in ("Agente: en ejecución", "estado DEGRADADO", "Oficina central: conectado",
                     "Lector de huellas: NO DISPONIBLE (sensor_disconnected)", "[device_missing]",
                     "Sincronización: 0 pendientes"):
            assert line in text.stdout, text.stdout
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(20)
        broker.kill()
    stopped = cli("status", "--data-dir", str(data), env=env)
    assert stopped.returncode == 0 and "Agente: NO RESPONDE" in stopped.stdout


def _fake_machine(tmp_path: Path) -> tuple[Path, Path, str, int]:
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    for i, (vid, pid) in enumerate([("072f", "2200"), ("1a86", "7523"), ("1d6b", "0002")]):
        entry = sysfs / f"1-{i}"
        entry.mkdir(parents=True)
        (entry / "idVendor").write_text(vid + "\n")
        (entry / "idProduct").write_text(pid + "\n")
    master, slave = os.openpty()  # a real serial-like node standing for the CH340's ttyUSB0
    pty = os.ttyname(slave)
    (dev / "serial" / "by-id").mkdir(parents=True)
    (dev / "serial" / "by-id" / "usb-1a86_USB_Serial-if00-port0").symlink_to(pty)
    (dev / "v4l" / "by-id").mkdir(parents=True)
    (dev / "video0").write_bytes(b"")
    (dev / "v4l" / "by-id" / "usb-Logitech_C920-video-index0").symlink_to(dev / "video0")
    (dev / "input" / "by-id").mkdir(parents=True)
    (dev / "input" / "event3").write_bytes(b"")
    (dev / "input" / "by-id" / "usb-MagTek_Swipe_Reader-event-kbd").symlink_to(dev / "input" / "event3")
    return sysfs, dev, str(dev / "serial" / "by-id" / "usb-1a86_USB_Serial-if00-port0"), master


def test_devices_lists_known_hardware_what_is_configured_and_suggests_the_rest(tmp_path: Path) -> None:
    sysfs, dev, serial_path, master = _fake_machine(tmp_path)
    try:
        settings = load_settings(None, {"fingerprint": {"enabled": True, "port": serial_path}})
        found, source = scan(settings, dev=dev, sysfs=sysfs)
    finally:
        os.close(master)
    by_name = {f.name: f for f in found}
    assert by_name["072f:2200"].label.startswith("ACS ACR122U") and not by_name["072f:2200"].configured
    assert by_name["072f:2200"].suggestion == "[cards.pcsc]\nenabled = true"
    assert by_name["1a86:7523"].role == "serial"
    assert "1d6b:0002" not in by_name  # a root hub is not ours
    assert by_name[serial_path].configured and by_name[serial_path].suggestion is None
    camera = by_name[str(dev / "v4l" / "by-id" / "usb-Logitech_C920-video-index0")]
    assert not camera.configured and camera.suggestion.endswith('camera = "%s"' % camera.name)
    assert str(dev / "video0") not in by_name  # listed once, by its stable name
    wedge = by_name[str(dev / "input" / "by-id" / "usb-MagTek_Swipe_Reader-event-kbd")]
    assert wedge.suggestion.startswith("[cards.magstripe]\nevdev_device = ")
    assert source in ("pyusb", "sysfs")


def test_devices_command_runs_on_this_machine(tmp_path: Path) -> None:
    r = cli("devices", "--json", "--data-dir", str(tmp_path), env=_env())
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["usb_source"] in ("pyusb", "sysfs") and isinstance(body["devices"], list)
    text = cli("devices", "--data-dir", str(tmp_path), env=_env())
    assert text.returncode == 0 and ("Dispositivos encontrados" in text.stdout or "No se encontró" in text.stdout)


def _checks(settings_overrides: dict, tmp_path: Path) -> dict[str, object]:
    settings = load_settings(None, {"storage": {"data_dir": str(tmp_path / "data")}, "devices": {"simulated": False},
                                    **settings_overrides})
    return {c.code: c for c in run_checks(settings, timeout=2)}


@needs_mosquitto
def test_doctor_checks_the_broker_plain_and_tls(tmp_path: Path) -> None:
    plain = Mosquitto(tmp_path / "plain").start()
    ca = TestCA(tmp_path / "pki")
    server_cert, server_key = ca.issue("broker", server=True)
    station_cert, station_key = ca.issue("st-1")
    port = free_port()
    tls = Mosquitto(tmp_path / "tls", port=port, extra_config="\n".join([
        f"listener {port} 127.0.0.1", f"cafile {ca.ca_file}", f"certfile {server_cert}", f"keyfile {server_key}",
        "require_certificate true"])).start()
    other_ca = TestCA(tmp_path / "other")
    try:
        checks = _checks({"mqtt": {"url": plain.url}}, tmp_path)
        assert checks["broker"].status == OK and "broker_tls" not in checks
        good = {"url": f"mqtts://127.0.0.1:{port}", "ca_file": str(ca.ca_file), "cert_file": str(station_cert),
                "key_file": str(station_key)}
        checks = _checks({"mqtt": good}, tmp_path)
        assert checks["broker_tls"].status != FAIL, checks["broker_tls"]
        assert "saludo TLS correcto" in checks["broker_tls"].message
        checks = _checks({"mqtt": {**good, "ca_file": str(other_ca.ca_file)}}, tmp_path)
        assert checks["broker_tls"].status == FAIL and "mqtt.ca_file" in checks["broker_tls"].remedy
        closed = _checks({"mqtt": {"url": f"mqtt://127.0.0.1:{free_port()}"}}, tmp_path)
        assert closed["broker"].status == FAIL and "firewall" in closed["broker"].remedy
    finally:
        plain.kill()
        tls.kill()


def test_doctor_reports_files_devices_and_bundle_with_what_to_do(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.ops.test_health import _public_key

    env = _env(LOYALTY_AGENT_DEVICES__SIMULATED="false", LOYALTY_AGENT_FINGERPRINT__ENABLED="true",
               LOYALTY_AGENT_FINGERPRINT__PORT=str(tmp_path / "no-such-tty"),
               LOYALTY_AGENT_CARDS__PINS__BUNDLE_PUBLIC_KEY=_public_key(Ed25519PrivateKey.generate()))
    data = tmp_path / "data"
    missing = cli("doctor", "--data-dir", str(data), env=env)
    assert missing.returncode == 1
    assert "✘ Carpeta de datos" in missing.stdout and "qué hacer:" in missing.stdout
    assert cli("token", "create", "--name", "pos-1", "--data-dir", str(data), env=env).returncode == 0
    r = cli("doctor", "--json", "--data-dir", str(data), env=env)
    assert r.returncode == 1
    checks = {c["code"]: c for c in json.loads(r.stdout)}
    assert checks["data_dir"]["status"] == "ok" and checks["database"]["status"] == "ok"
    assert checks["device_fingerprint"]["status"] == "failing" and "loyalty-agent devices" in checks["device_fingerprint"]["remedy"]
    assert checks["pin_bundle"]["status"] == "failing" and "pins import" in checks["pin_bundle"]["remedy"]
    assert checks["pin_key"]["status"] == "failing"
    assert checks["broker"]["status"] == "warning"  # no head office configured
    assert checks["clock"]["status"] in ("ok", "warning") and checks["disk"]["status"] == "ok"
