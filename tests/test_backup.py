"""``loyalty-agent backup`` / ``restore``: consistent under write load, 0600, keys included,
optionally sealed to head office's key; restore refuses a running agent and anything damaged."""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa, x25519
from stdnum.cl import rut

from agent.cli import main
from agent.customers.models import CustomerCreate
from agent.store.datadir import DataDirLock
from agent.station import customer_service, open_database
from tests.conftest import make_settings

REPO_ROOT = Path(__file__).resolve().parent.parent


def body(i: int) -> CustomerCreate:
    number = str(7_000_000 + i)
    return CustomerCreate.model_validate({
        "document": {"country": "CL", "type": "RUT", "number": number + rut.calc_check_digit(number)},
        "kind": "natural", "first_name": "Ana", "first_surname": "Rojas"})


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        found = conn.execute(sql).fetchall()
    conn.close()
    return found


def test_backup_under_write_load_restores_every_customer_and_unconfirmed_event(tmp_path: Path,
                                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    settings = make_settings(data)
    db = open_database(settings)
    customers = customer_service(db, settings)
    (data / "keys").mkdir(mode=0o700, exist_ok=True)
    (data / "keys" / "biometric.key").write_bytes(os.urandom(32))
    for i in range(200):
        customers.create(body(i), "test")
    stop = threading.Event()
    written = [200]

    def writer() -> None:  # keeps committing customers (each with its outbox event) during the backup
        while not stop.is_set():
            customers.create(body(written[0]), "test")
            written[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        dest = tmp_path / "station.tar"
        assert main(["backup", str(dest), "--data-dir", str(data)]) == 0
        during = written[0]
    finally:
        stop.set()
        thread.join()
        db.close()
    assert during > 200, "the writer never ran during the backup: the test would prove nothing"
    summary = json.loads(capsys.readouterr().out)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    with tarfile.open(dest) as tar:
        assert sorted(tar.getnames()) == ["agent.db", "keys/biometric.key", "manifest.json"]

    target = tmp_path / "restored"
    assert main(["restore", str(dest), "--data-dir", str(target)]) == 0
    restored = target / "agent.db"
    assert stat.S_IMODE(restored.stat().st_mode) == 0o600
    assert (target / "keys" / "biometric.key").read_bytes() == (data / "keys" / "biometric.key").read_bytes()
    source = data / "agent.db"
    # A snapshot as of one commit: the first K customers in creation order, K at least what existed
    # when the backup started, and each with exactly its outbox event, nothing torn.
    got = [r[0] for r in rows(restored, "SELECT doc_number FROM customers ORDER BY rowid")]
    expected = [r[0] for r in rows(source, "SELECT doc_number FROM customers ORDER BY rowid")]
    assert len(got) >= 200 and got == expected[:len(got)] and len(got) == summary["customers"]
    events = rows(restored, "SELECT seq, id, type, payload FROM outbox WHERE state != 'confirmed' ORDER BY seq")
    source_events = rows(source, "SELECT seq, id, type, payload FROM outbox ORDER BY seq")
    assert events == source_events[:len(events)] and len(events) == summary["unconfirmed_events"]
    assert len([e for e in events if e[2] == "customer.created"]) == len(got)
    # And the restored station opens and answers.
    reopened = open_database(make_settings(target))
    try:
        assert customer_service(reopened, make_settings(target)).find_by_document("CL", "RUT", "7.000.000-8")
    finally:
        reopened.close()


@pytest.mark.parametrize("kind", ["x25519", "rsa"])
def test_encrypted_backup_opens_only_with_head_office_private_key(tmp_path: Path, kind: str) -> None:
    data = tmp_path / "data"
    settings = make_settings(data)
    db = open_database(settings)
    customer_service(db, settings).create(body(1), "test")
    db.close()
    private = x25519.X25519PrivateKey.generate() if kind == "x25519" else rsa.generate_private_key(65537, 2048)
    (tmp_path / "ho.pub").write_bytes(private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    (tmp_path / "ho.key").write_bytes(private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    dest = tmp_path / "enc.tar.enc"
    assert main(["backup", str(dest), "--data-dir", str(data), "--encrypt-to", str(tmp_path / "ho.pub")]) == 0
    raw = dest.read_bytes()
    assert b"SQLite format 3" not in raw and b"customers" not in raw

    cli = [sys.executable, "-m", "agent.cli", "restore", str(dest), "--data-dir", str(tmp_path / "r")]
    r = subprocess.run(cli, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    assert r.returncode == 1 and "está cifrada; indique la clave privada con --key" in r.stderr
    other = x25519.X25519PrivateKey.generate()
    (tmp_path / "other.key").write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    r = subprocess.run([*cli, "--key", str(tmp_path / "other.key")], capture_output=True, text=True, cwd=REPO_ROOT,
                       check=False)
    assert r.returncode == 1 and "no se pudo descifrar" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r" / "agent.db").exists()  # nothing changed
    # A cut-short file is refused too (the last chunk is authenticated as the last).
    (tmp_path / "cut.enc").write_bytes(raw[: len(raw) - 100])
    assert main(["restore", str(tmp_path / "cut.enc"), "--data-dir", str(tmp_path / "r"),
                 "--key", str(tmp_path / "ho.key")]) == 1
    assert main(["restore", str(dest), "--data-dir", str(tmp_path / "r"), "--key", str(tmp_path / "ho.key")]) == 0
    assert rows(tmp_path / "r" / "agent.db", "SELECT count(*) FROM customers") == [(1,)]


def test_restore_refuses_while_an_agent_holds_the_folder_and_a_damaged_backup(tmp_path: Path,
                                                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    open_database(make_settings(data)).close()
    dest = tmp_path / "b.tar"
    assert main(["backup", str(dest), "--data-dir", str(data)]) == 0
    before = (data / "agent.db").read_bytes()
    with DataDirLock(data):  # what a running agent holds
        assert main(["restore", str(dest), "--data-dir", str(data)]) == 1
    assert f"otro agente ya usa la carpeta de datos {data} (PID {os.getpid()})" in capsys.readouterr().err
    # A flipped byte inside the database: the sha256 in the manifest no longer matches.
    damaged = tmp_path / "damaged.tar"
    raw = bytearray(dest.read_bytes())
    at = raw.index(b"SQLite format 3") + 5000
    raw[at] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    assert main(["restore", str(damaged), "--data-dir", str(data)]) == 1
    assert "agent.db falta o no coincide con su suma sha256" in capsys.readouterr().err
    assert (data / "agent.db").read_bytes() == before
    assert not list(data.glob("before-restore-*"))


def test_a_backup_from_a_newer_build_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    open_database(make_settings(data)).close()
    with sqlite3.connect(data / "agent.db") as conn:
        conn.execute("INSERT INTO schema_migrations(name, writer_version) VALUES ('core_999_future', '9.9.9')")
    conn.close()
    assert main(["backup", str(tmp_path / "b.tar"), "--data-dir", str(data)]) == 0
    assert main(["restore", str(tmp_path / "b.tar"), "--data-dir", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "core_999_future" in err and "9.9.9" in err
    assert not (tmp_path / "r" / "agent.db").exists()


def test_restore_moves_aside_a_leftover_wal_of_the_same_database(tmp_path: Path) -> None:
    """A WAL left by the running station (a crash, a power cut) belongs to the same database as
    the backup, so the start-up guard cannot call it foreign: restore must not leave it beside
    the restored file, or SQLite would apply newer pages over the older copy."""
    data = tmp_path / "data"
    settings = make_settings(data)
    db = open_database(settings)
    customers = customer_service(db, settings)
    for i in range(10):
        customers.create(body(i), "test")
    dest = tmp_path / "station.tar"
    assert main(["backup", str(dest), "--data-dir", str(data)]) == 0
    db._stop_checkpoints.set()  # keep the later writes in the WAL, as at a crash
    db._checkpointer.join(5)
    for i in range(10, 20):
        customers.create(body(i), "test")
    crash = tmp_path / "crash"
    crash.mkdir()
    for name in ("agent.db-wal", "agent.db-shm", "agent.db.wal-id"):
        (crash / name).write_bytes((data / name).read_bytes())
    wal = (crash / "agent.db-wal").read_bytes()
    assert len(wal) > 32, "no WAL content: the test would prove nothing"
    db.close()
    for name in ("agent.db-wal", "agent.db-shm", "agent.db.wal-id"):
        (data / name).write_bytes((crash / name).read_bytes())

    assert main(["restore", str(dest), "--data-dir", str(data)]) == 0
    assert not (data / "agent.db-wal").exists() and not (data / "agent.db-shm").exists()
    aside = next(data.glob("before-restore-*"))
    assert (aside / "agent.db-wal").read_bytes() == wal  # kept, never deleted
    reopened = open_database(make_settings(data))
    try:
        assert reopened.read(lambda c: c.execute("SELECT count(*) FROM customers").fetchone()[0]) == 10
        assert reopened.integrity_ok()
    finally:
        reopened.close()
