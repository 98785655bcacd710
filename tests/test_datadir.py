"""The data folder: migrations from a newer build refused, a backup before migrating, 0700/0600
whatever the umask, one agent per folder, permission problems as Spanish errors with what to do.

Permission denials need a user that is not root (root passes every permission check): where the
tests run as root (CI), the command runs as ``nobody`` through util-linux's ``setpriv``.
"""
from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import __version__
from agent.station import MIGRATIONS, open_database
from agent.store.migrations import UnknownMigrations
from tests.conftest import free_port, make_settings

REPO = Path(__file__).resolve().parent.parent


def cli(*args: str, user: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "agent.cli", *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", "--regid=65534", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=timeout, check=False,
                          env={**os.environ, "HOME": "/tmp"})


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A folder every user may traverse (pytest's tmp_path sits under a root-only 0700 folder)."""
    folder = Path(tempfile.mkdtemp(prefix="loyalty-perm-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_an_unreachable_data_folder_is_a_permission_error(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the folder to nobody")
    r = cli("status", "--data-dir", str(tmp_path / "d"), user="nobody")  # tmp_path's parents are 0700 root
    assert r.returncode == 1 and "Traceback" not in r.stderr
    closed = next(p for p in reversed(tmp_path.parents) if not os.stat(p).st_mode & 0o001)
    assert f"La carpeta {closed} pertenece al usuario root y el agente corre como nobody" in r.stderr
    assert "(store_other_owner)" in r.stderr


def test_each_migration_records_the_version_that_applied_it(tmp_path: Path) -> None:
    open_database(make_settings(tmp_path / "d")).close()
    with sqlite3.connect(tmp_path / "d" / "agent.db") as conn:
        writers = dict(conn.execute("SELECT name, writer_version FROM schema_migrations").fetchall())
    conn.close()
    assert writers == {name: __version__ for name, _ in MIGRATIONS}


def test_a_database_from_a_newer_build_is_refused_unchanged_naming_its_version(tmp_path: Path) -> None:
    data = tmp_path / "d"
    open_database(make_settings(data)).close()
    db = data / "agent.db"
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO schema_migrations(name, writer_version) VALUES ('core_900_future', '3.1.0')")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(UnknownMigrations) as info:
        open_database(make_settings(data))
    assert "core_900_future" in info.value.es and "aplicadas por la versión 3.1.0" in info.value.es
    assert "rollback --to 3.1.0" in info.value.es
    assert db.read_bytes() == before
    r = cli("run", "--data-dir", str(data), "--port", str(free_port()))
    assert r.returncode == 1 and "no conoce (core_900_future)" in r.stderr and "Traceback" not in r.stderr


def test_a_database_of_a_build_that_recorded_no_versions_is_refused_too(tmp_path: Path) -> None:
    db = tmp_path / "d" / "agent.db"
    db.parent.mkdir()
    with sqlite3.connect(db) as conn:  # the schema_migrations of builds before writer_version
        conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT '')")
        conn.execute("INSERT INTO schema_migrations(name) VALUES ('core_900_future')")
    conn.close()
    with pytest.raises(UnknownMigrations) as info:
        open_database(make_settings(tmp_path / "d"))
    assert "aplicadas por la versión desconocida" in info.value.es


def test_an_existing_database_is_backed_up_before_a_migration_and_a_new_one_is_not(tmp_path: Path) -> None:
    data = tmp_path / "d"
    from agent.store.db import Database

    older = list(MIGRATIONS)[:-1]  # what the previous build knew
    Database(data / "agent.db", older, writer_version="0.9").close()
    open_database(make_settings(data)).close()
    backups = list((data / "backups").glob("pre-migration-*.db"))
    assert len(backups) == 1 and MIGRATIONS[-1][0] in backups[0].name
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600
    with sqlite3.connect(backups[0]) as conn:
        assert [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")] == [n for n, _ in older]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    open_database(make_settings(tmp_path / "fresh")).close()
    assert not (tmp_path / "fresh" / "backups").exists()


def test_data_folder_0700_and_database_files_0600_under_umask_022(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir(mode=0o755)
    old = os.umask(0o022)
    try:
        db = open_database(make_settings(data))
        try:
            db.write(lambda c: c.execute("CREATE TABLE scratch(x)"))
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir() if p.name.startswith("agent.db")}
        finally:
            db.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert modes == {"agent.db": 0o600, "agent.db-wal": 0o600, "agent.db-shm": 0o600, "agent.db.wal-id": 0o600}


@pytest.mark.skipif(shutil.which("setpriv") is None and os.geteuid() == 0, reason="setpriv (util-linux) missing")
@pytest.mark.parametrize("command", [("run",), ("status",), ("token", "list")])
def test_permission_problems_are_spanish_errors_with_what_to_do(open_tmp: Path, command: tuple[str, ...]) -> None:
    data = open_tmp / "d"
    open_database(make_settings(data)).close()
    if os.geteuid() == 0:
        os.chown(data, 0, 0)  # the service's folder, 0700, not the caller's
        r = cli(*command, "--data-dir", str(data), *(("--port", str(free_port())) if command == ("run",) else ()),
                user="nobody")
    else:
        data.chmod(0o000)
        try:
            r = cli(*command, "--data-dir", str(data))
        finally:
            data.chmod(0o700)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    if os.geteuid() == 0:
        assert f"La carpeta de datos {data} pertenece al usuario root y el agente corre como nobody" in r.stderr
        assert "(store_other_owner)" in r.stderr
    else:
        assert f"La carpeta de datos {data} es de solo lectura" in r.stderr and "(store_read_only)" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to hand files to nobody")
def test_a_read_only_database_is_a_permission_error_not_a_sqlite_traceback(open_tmp: Path) -> None:
    data = open_tmp / "d"
    open_database(make_settings(data)).close()
    shutil.chown(data, "nobody", "nogroup")  # the folder is the caller's, the database is not
    os.chmod(data / "agent.db", 0o644)
    r = cli("token", "list", "--data-dir", str(data), user="nobody")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"El archivo {data / 'agent.db'} pertenece al usuario root" in r.stderr and "(store_other_owner)" in r.stderr


def test_a_second_agent_on_the_same_folder_stops_before_mqtt_or_the_port(tmp_path: Path) -> None:
    data = tmp_path / "d"
    port = free_port()
    first = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data), "--port", str(port)],
                             cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    broker = socket.socket()  # a "broker" that only records whether anyone connects
    broker.bind(("127.0.0.1", 0))
    broker.listen()
    broker.settimeout(0.5)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (data / "agent.lock").exists():
            time.sleep(0.1)
        _wait_port(port)
        r = cli("run", "--data-dir", str(data), "--port", str(free_port()),
                "--mqtt-url", f"mqtt://127.0.0.1:{broker.getsockname()[1]}")
        assert r.returncode == 1
        assert f"otro agente ya usa la carpeta de datos {data} (PID {first.pid})" in r.stderr
        with pytest.raises(socket.timeout):
            broker.accept()  # the second agent never reached head office
        assert first.poll() is None  # and the first one keeps running
    finally:
        broker.close()
        first.terminate()
        first.wait(30)


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("agent never listened")
