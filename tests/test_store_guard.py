"""The store on damaged state, foreign files, wrong permissions, a full disk and sustained load.

Real SQLite files, the real agent process (``loyalty-agent run``) and, for the full disk, a
real 8 MiB tmpfs (mounting needs root: CI runs as root; elsewhere those tests are skipped).
Permissions are tested as the unprivileged ``nobody`` user (root ignores them).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import pwd
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.store.db import Database
from agent.station import MIGRATIONS
from agent.store.outbox import append_event
from tests.conftest import MARIA, free_port, wait_until

ROOT = os.geteuid() == 0


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_agent(data_dir: Path, *extra_env: tuple[str, str], user: str | None = None,
               wait_s: float = 30) -> subprocess.CompletedProcess[str]:
    """Start the agent and expect it to refuse: it must exit by itself within ``wait_s``."""
    command = [sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data_dir), "--port", str(free_port())]
    if user is not None:
        entry = pwd.getpwnam(user)
        command = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=wait_s,
                          env={**os.environ, **dict(extra_env)})


def _station(data_dir: Path, events: int = 400) -> None:
    db = Database(data_dir / "agent.db", list(MIGRATIONS))
    db.write(lambda c: [append_event(c, "test.filler", {"n": i, "text": "x" * 300}) for i in range(events)])
    db.close()


def _assert_refused(result: subprocess.CompletedProcess[str], code: str, spanish: str) -> None:
    assert result.returncode != 0
    assert f"({code})" in result.stderr and spanish in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_garbage_pages_stop_the_agent_and_nothing_is_deleted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _station(data)
    db_file = data / "agent.db"
    page = 4096
    with open(db_file, "r+b") as f:  # garbage over two pages in the middle of the outbox table
        f.seek((db_file.stat().st_size // page // 2) * page)
        f.write(os.urandom(2 * page))
    before = _digest(db_file)
    _assert_refused(_run_agent(data), "store_damaged", "está dañada")
    assert _digest(db_file) == before


def test_a_garbage_header_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "agent.db").write_bytes(os.urandom(8192))
    before = _digest(data / "agent.db")
    _assert_refused(_run_agent(data), "store_not_a_database", "no es una base de datos SQLite")
    assert _digest(data / "agent.db") == before


def _wal_of_another_database(tmp_path: Path) -> bytes:
    """A non-empty WAL of a different station's database (same schema), as a copy would bring."""
    other = tmp_path / "other"
    _station(other, events=5)
    conn = sqlite3.connect(other / "agent.db", isolation_level=None)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("DELETE FROM api_tokens")
    conn.execute("UPDATE outbox SET payload = '{}'")
    wal = (other / "agent.db-wal").read_bytes()
    conn.close()
    return wal


def test_a_wal_from_another_database_is_refused_not_applied(tmp_path: Path) -> None:
    from agent.tokens import TokenStore

    data = tmp_path / "data"
    _station(data)
    db = Database(data / "agent.db", list(MIGRATIONS))
    token = TokenStore(db).create("pos-1")
    db.close()
    (data / "agent.db-wal").write_bytes(_wal_of_another_database(tmp_path))
    before = _digest(data / "agent.db"), _digest(data / "agent.db-wal")
    _assert_refused(_run_agent(data), "store_foreign_wal", "no pertenece a esta base de datos")
    assert (_digest(data / "agent.db"), _digest(data / "agent.db-wal")) == before
    # Moving the stray file away (what the message says) brings the station back, tokens intact.
    (data / "agent.db-wal").rename(tmp_path / "stray-wal")
    db = Database(data / "agent.db", list(MIGRATIONS), verify=True)
    assert TokenStore(db).authenticate(token) is not None
    db.close()


def test_the_station_own_wal_after_a_kill_is_applied(tmp_path: Path) -> None:
    """No false alarm: a WAL left by a SIGKILL mid-writes is this database's and holds commits."""
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "agent.cli", "token", "create", "--name", "pos-1", "--data-dir",
                    str(data)], check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    token_proc = subprocess.run([sys.executable, "-m", "agent.cli", "token", "create", "--name", "pos-2",
                                 "--data-dir", str(data)], capture_output=True, text=True, check=True)
    token = token_proc.stdout.strip()
    try:
        assert wait_until(lambda: _get(port, "/v1/health")[0] == 200, 30, tolerate=(OSError,))
        for i in range(3):
            body = dict(MARIA, document={"country": "CL", "type": "RUT", "number": ["11.111.111-1", "22.222.222-2",
                                                                                     "12.345.678-5"][i]})
            assert _post(port, "/v1/customers", body, token)[0] == 201
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert (data / "agent.db-wal").stat().st_size > 0  # the kill left a WAL behind
    db = Database(data / "agent.db", list(MIGRATIONS), verify=True)
    assert db.read(lambda c: c.execute("SELECT count(*) FROM customers").fetchone()[0]) == 3
    db.close()


def _get(port: int, path: str, token: str | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


def _post(port: int, path: str, body: dict, token: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


@pytest.mark.skipif(not ROOT or shutil.which("setpriv") is None, reason="needs root to run as another user")
def test_another_owner_and_a_read_only_folder_are_clear_errors() -> None:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="store-owner-") as base:  # pytest's own tmp is 0700 root
        Path(base).chmod(0o755)
        _owner_and_read_only(Path(base))


def _owner_and_read_only(tmp_path: Path) -> None:
    owned = tmp_path / "owned"
    _station(owned, events=5)
    owned.chmod(0o700)  # root's, as after a `sudo loyalty-agent token create`
    result = _run_agent(owned, user="nobody")
    _assert_refused(result, "store_other_owner", "pertenece al usuario root")
    read_only = tmp_path / "read-only"
    _station(read_only, events=5)
    nobody = pwd.getpwnam("nobody")
    for f in [read_only, *read_only.iterdir()]:
        os.chown(f, nobody.pw_uid, nobody.pw_gid)
    read_only.chmod(0o500)
    result = _run_agent(read_only, user="nobody")
    _assert_refused(result, "store_read_only", "solo lectura")


def test_the_wal_stays_bounded_under_sustained_writes_and_readers(tmp_path: Path) -> None:
    limit = 256 * 1024
    db = Database(tmp_path / "agent.db", list(MIGRATIONS), wal_soft_limit_bytes=limit)
    db.write(lambda c: c.execute("CREATE TABLE load(x BLOB)"))
    stop = threading.Event()
    largest = [0]

    def writer() -> None:
        while not stop.is_set():
            db.write(lambda c: c.executemany("INSERT INTO load VALUES (randomblob(8000))", [()] * 20))

    def reader() -> None:
        while not stop.is_set():  # back-to-back read transactions: always one open
            db.read(lambda c: c.execute("SELECT count(*) FROM load").fetchone())

    threads = [threading.Thread(target=writer) for _ in range(2)] + [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        largest[0] = max(largest[0], os.stat(f"{tmp_path / 'agent.db'}-wal").st_size)
        time.sleep(0.01)
    stop.set()
    for t in threads:
        t.join()
    written = db.read(lambda c: c.execute("SELECT count(*) FROM load").fetchone()[0]) * 8000
    db.close()
    assert written > 8 * limit  # enough load that an unbounded WAL would have grown past the bound
    assert largest[0] < 3 * limit, f"WAL reached {largest[0]} bytes for {written} written"


@pytest.fixture
def tiny_disk(tmp_path: Path):
    if not ROOT:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path, leave_bytes: int) -> Path:
    filler = folder / "filler"
    free = shutil.disk_usage(folder).free
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))
    return filler


def test_a_full_disk_is_507_then_reads_after_a_kill_then_recovers_without_restart(tiny_disk: Path) -> None:
    data = tiny_disk / "data"
    token = subprocess.run([sys.executable, "-m", "agent.cli", "token", "create", "--name", "pos-1", "--data-dir",
                            str(data)], capture_output=True, text=True, check=True).stdout.strip()
    env = {**os.environ, "LOYALTY_AGENT_STORAGE__MIN_FREE_BYTES": "0"}  # hit the real ENOSPC, not the reserve

    def start() -> tuple[subprocess.Popen[str], int]:
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "agent.cli", "run", "--data-dir", str(data), "--port",
                                 str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert wait_until(lambda: _get(port, "/v1/health")[0] == 200, 30, tolerate=(OSError, ValueError)), \
            proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        return proc, port

    proc, port = start()
    filler = _fill(tiny_disk, 300 * 1024)
    statuses = []
    try:
        for i in range(400):
            body = dict(MARIA, document={"country": "CO", "type": "CC", "number": str(10_000_000 + i)})
            status, answer = _post(port, "/v1/customers", body, token)
            statuses.append(status)
            if status == 507:
                assert answer["code"] == "storage_full" and "disco" in answer["detail"]
                break
        assert statuses[-1] == 507 and 500 not in statuses, statuses
        first_saved = 10_000_000
        health = _get(port, "/v1/health")[1]
        assert health["status"] == "failing" and "disk_full" in [r["code"] for r in health["reasons"]]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # Restart on the full disk: it starts and serves reads.
    proc, port = start()
    try:
        status, found = _get(port, f"/v1/customers?document_country=CO&document_type=CC&document_number={first_saved}",
                             token)
        assert status == 200, found
        # Space comes back: new work is accepted again without a restart.
        body = dict(MARIA, document={"country": "CO", "type": "CC", "number": "99999999"})
        assert _post(port, "/v1/customers", body, token)[0] == 507
        filler.unlink()
        assert _post(port, "/v1/customers", body, token)[0] == 201
        assert "disk_full" not in [r["code"] for r in _get(port, "/v1/health")[1]["reasons"]]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    logs = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in logs


def test_the_reserve_refuses_business_work_but_not_security_events(tmp_path: Path) -> None:
    from agent.store.db import StorageFull
    from agent.store.outbox import configure_budget

    db = Database(tmp_path / "agent.db", list(MIGRATIONS))
    free = shutil.disk_usage(tmp_path).free
    db.write(lambda c: configure_budget(c, None, None, free + 10 * 1024 * 1024))  # more than there is
    with pytest.raises(StorageFull) as info:
        db.write(lambda c: append_event(c, "test.sale", {"n": 1}))
    assert info.value.status == 507 and info.value.extra == {"reason": "disk"}
    db.write(lambda c: append_event(c, "attendant.locked_out", {"n": 1}, security=True))
    assert db.read(lambda c: c.execute("SELECT count(*) FROM outbox").fetchone()[0]) == 1
    db.close()
