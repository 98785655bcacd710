"""Station packaging: the release archive, the installer into a folder root, upgrade and rollback.

The installer (packaging/loyalty-station) runs for real with ``--root``: release folders, venvs
built by /usr/bin/python3 from the hashed lock, the ``current`` link, config, udev rules and the
unit are written under a temporary root, and the agent of each release really starts and answers
/v1/health. What cannot run here is only recorded, not executed: useradd/groupadd/chown/udevadm/
systemctl/apt-get would change this machine, so ``--root`` writes them to system-commands.log, and
the agent is started directly instead of by systemd.
"""
from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import free_port

REPO = Path(__file__).resolve().parent.parent
STATION = REPO / "packaging" / "loyalty-station"


def build_release(out: Path, version: str) -> Path:
    env = {**os.environ, "SETUPTOOLS_SCM_PRETEND_VERSION": version}
    r = subprocess.run([str(REPO / "packaging" / "build-release"), str(out)], capture_output=True, text=True,
                       env=env, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    return Path(r.stdout.strip().splitlines()[-1])


def station(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOYALTY_STATION_HEALTH_TIMEOUT_S": "60"}
    return subprocess.run(["/usr/bin/python3", str(STATION), "--root", str(root), *args], capture_output=True,
                          text=True, timeout=timeout, env=env, check=False)


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("releases")
    return {v: build_release(out, v) for v in ("1.0.0", "2.0.0")}


def test_release_archive_has_the_station_parts_and_no_dev_extras(releases: dict[str, Path]) -> None:
    with tarfile.open(releases["1.0.0"]) as archive:
        names = {Path(n).name for n in archive.getnames()}
        lock = archive.extractfile("loyalty-agent-1.0.0/station.lock").read().decode()  # type: ignore[union-attr]
        version = archive.extractfile("loyalty-agent-1.0.0/VERSION").read().decode().strip()  # type: ignore[union-attr]
    assert {"loyalty-station", "station.lock", "devices.lock", "loyalty-agent.service", "60-loyalty-agent.rules",
            "agent.toml", "VERSION", "loyalty_agent-1.0.0-py3-none-any.whl"} <= names
    assert version == "1.0.0"
    pinned = set(re.findall(r"^([a-z0-9][a-z0-9._-]*)==", lock, re.M))
    assert {"fastapi", "uvicorn", "paho-mqtt", "opencv-python-headless", "numpy"} <= pinned
    assert not pinned & {"pytest", "hypothesis", "pyscard", "evdev", "pyzbar", "sqlite-utils", "httpx"}
    pins = [block for block in re.split(r"\n(?=\S)", lock) if re.match(r"[a-z0-9]", block)]
    assert len(pins) >= len(pinned) and all("--hash=sha256:" in pin for pin in pins)  # every pin carries hashes
    version_file = REPO / "agent" / "_version.py"  # the work tree was not written
    assert not version_file.exists() or "1.0.0" not in version_file.read_text()


@pytest.mark.slow
def test_install_upgrade_and_rollback_in_a_folder_root(tmp_path: Path, releases: dict[str, Path]) -> None:
    root = tmp_path / "root"
    port = free_port()
    config = root / "etc" / "loyalty-agent" / "agent.toml"
    config.parent.mkdir(parents=True)
    # The technician's config exists before install: the installer must keep it, not replace it.
    config.write_text(f'[api]\nport = {port}\n[storage]\ndata_dir = "{root}/var/lib/loyalty-agent"\n')
    try:
        r = station(root, "install", str(releases["1.0.0"]))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "versión 1.0.0 en marcha y sana" in r.stdout
        opt = root / "opt" / "loyalty-agent"
        assert os.readlink(opt / "current") == "releases/1.0.0"
        assert f"port = {port}" in config.read_text()
        assert stat.S_IMODE((root / "var/lib/loyalty-agent").stat().st_mode) == 0o700
        assert (root / "etc/udev/rules.d/60-loyalty-agent.rules").read_text() == \
            (REPO / "packaging/udev/60-loyalty-agent.rules").read_text()
        unit = (root / "etc/systemd/system/loyalty-agent.service").read_text()
        assert "ExecStart=/opt/loyalty-agent/current/venv/bin/loyalty-agent run" in unit
        venv = opt / "releases/1.0.0/venv"
        assert (venv / "pyvenv.cfg").read_text().count("/usr/bin") >= 1  # built by Debian's python3
        listed = subprocess.run([str(venv / "bin/python"), "-m", "pip", "list", "--format=json"], capture_output=True,
                                text=True, check=True).stdout
        installed = {p["name"].lower(): p["version"] for p in json.loads(listed)}
        assert installed["loyalty-agent"] == "1.0.0" and "fastapi" in installed
        assert not installed.keys() & {"pytest", "hypothesis", "httpx", "pyscard", "evdev"}
        commands = (root / "system-commands.log").read_text()
        assert "--groups dialout,video,input,plugdev loyalty-agent" in commands
        assert "systemctl enable loyalty-agent.service" in commands

        # Some data, then the upgrade: snapshot taken with the agent stopped, release switched.
        token = subprocess.run([str(opt / "current/venv/bin/loyalty-agent"), "token", "create", "--name", "pos-1",
                                "--config", str(config)], capture_output=True, text=True, check=True).stdout.strip()
        assert token
        r = station(root, "upgrade", str(releases["2.0.0"]))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "actualizado 1.0.0 -> 2.0.0" in r.stdout
        assert os.readlink(opt / "current") == "releases/2.0.0"
        snapshots = list((root / "var/backups/loyalty-agent").iterdir())
        assert [s.name.split("-")[0] for s in snapshots] == ["1.0.0"]
        with sqlite3.connect(snapshots[0] / "agent.db") as db:
            assert db.execute("SELECT count(*) FROM api_tokens WHERE name = 'pos-1'").fetchone()[0] == 1

        r = station(root, "rollback")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "vuelto a 1.0.0 (desde 2.0.0)" in r.stdout
        assert os.readlink(opt / "current") == "releases/1.0.0"
        listing = station(root, "list").stdout
        assert '"current": "1.0.0"' in listing and '"2.0.0"' in listing

        # A rollback onto a database the older release does not know: it refuses to start, the
        # installer says to restore the data copy, and --restore-data brings it up on that copy.
        assert station(root, "upgrade", str(releases["2.0.0"])).returncode == 0
        with sqlite3.connect(root / "var/lib/loyalty-agent/agent.db") as db:  # what a 2.0.0 migration leaves
            db.execute("INSERT INTO schema_migrations(name, writer_version) VALUES ('core_999_next', '2.0.0')")
        db.close()
        r = station(root, "rollback")
        assert r.returncode == 1 and "repita con --restore-data" in r.stderr
        assert "no conoce (core_999_next)" in (root / "run/agent.log").read_text()
        r = station(root, "rollback", "--to", "1.0.0", "--restore-data")
        assert r.returncode == 0, r.stdout + r.stderr
        assert os.readlink(opt / "current") == "releases/1.0.0"
        with sqlite3.connect(root / "var/lib/loyalty-agent/agent.db") as db:
            assert db.execute("SELECT count(*) FROM schema_migrations WHERE name = 'core_999_next'").fetchone()[0] == 0
            assert db.execute("SELECT count(*) FROM api_tokens WHERE name = 'pos-1'").fetchone()[0] == 1
        db.close()

        # An upgrade whose agent does not come up goes back to the release that was running.
        r = station(root, "upgrade", str(broken_release(tmp_path, releases["2.0.0"], "3.0.0")))
        assert r.returncode == 1
        assert "la versión 3.0.0 no quedó sana (el agente terminó al arrancar" in r.stderr
        assert "versión 1.0.0 en marcha y sana" in r.stdout
        assert os.readlink(opt / "current") == "releases/1.0.0"
    finally:
        _stop_sandbox_agent(root)


def broken_release(tmp_path: Path, archive_path: Path, version: str) -> Path:
    """A release whose lock lacks uvicorn: its agent dies at start-up."""
    with tarfile.open(archive_path) as archive:
        archive.extractall(tmp_path / "broken")  # our own archive, just built
    folder = next((tmp_path / "broken").iterdir())
    (folder / "VERSION").write_text(version + "\n")
    lock = (folder / "station.lock").read_text()
    (folder / "station.lock").write_text(re.sub(r"^uvicorn==.*?(?=^\S)", "", lock, flags=re.M | re.S))
    return folder


def test_installer_refuses_to_upgrade_nothing_and_to_roll_back_without_a_previous_release(tmp_path: Path) -> None:
    r = station(tmp_path, "rollback")
    assert r.returncode == 1 and "no hay ninguna versión instalada" in r.stderr
    r = station(tmp_path, "upgrade", str(tmp_path))
    assert r.returncode == 1


def test_udev_rules_are_well_formed_and_use_the_installer_groups() -> None:
    rules = (REPO / "packaging/udev/60-loyalty-agent.rules").read_text().splitlines()
    pair = r'[A-Z_]+(\{[A-Za-z_]+\})?(==|!=|=|\+=)"[^"]*"'
    groups = set()
    for line in rules:
        if not line.strip() or line.startswith("#"):
            continue
        assert re.fullmatch(rf"{pair}(, {pair})*", line), line
        groups.update(re.findall(r'GROUP="([^"]+)"', line))
    source = STATION.read_text()
    assert groups <= {"dialout", "video", "input", "plugdev", "loyalty-agent"}
    assert 'GROUPS = ("dialout", "video", "input", "plugdev")' in source
    assert any("ttyAMA0|ttyS0" in line for line in rules)


def test_unit_allows_the_raspberry_pi_gpio_uart() -> None:
    unit = (REPO / "systemd/loyalty-agent.service").read_text()
    assert "DeviceAllow=char-ttyAMA rw" in unit and "DeviceAllow=char-ttyS rw" in unit


def _stop_sandbox_agent(root: Path) -> None:
    pidfile = root / "run" / "loyalty-agent.pid"
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass
