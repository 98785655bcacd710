"""``loyalty-agent backup`` and ``restore``: the station's database and keys in one archive.

The archive (a tar, 0600) holds ``agent.db`` (an online-backup snapshot, see backup.py), the
``keys/`` folder (without it fingerprint templates and ID photos cannot be decrypted) and
``manifest.json`` (version, migrations, sha256 of every member). It may be sealed to head
office's public key (backup_crypto.py). Restore refuses while an agent runs on the folder,
checks the hashes, the database's integrity and that this build knows its migrations, and only
then swaps the files in; what was there is kept in ``before-restore-TIME/``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from agent.store import datadir
from agent.errors import AgentError
from agent.store import backup_crypto
from agent.store.backup import snapshot
from agent.store.migrations import check_known, recorded_migrations

FORMAT = 1
DB_NAME = "agent.db"
KEYS = "keys"


class BackupInvalid(AgentError):
    def __init__(self, source: Path, why_es: str, why_en: str) -> None:
        super().__init__("backup_invalid", f"la copia {source} no se puede restaurar: {why_es}; nada se cambió",
                         f"the backup {source} cannot be restored: {why_en}; nothing was changed", status=422)


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    bytes: int
    customers: int
    unconfirmed_events: int
    seconds: float


def create_backup(data_dir: Path, dest: Path, *, version: str, public_key_pem: bytes | None = None) -> BackupSummary:
    started = time.monotonic()
    database = data_dir / DB_NAME
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".backup-") as work:
        os.chmod(work, 0o700)
        copy = Path(work) / DB_NAME
        snapshot(database, copy)
        counts = _counts(copy)
        members = {DB_NAME: copy}
        keys = data_dir / KEYS
        if keys.is_dir():
            members.update({f"{KEYS}/{p.name}": p for p in sorted(keys.iterdir()) if p.is_file()})
        manifest = {"format": FORMAT, "version": version, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "migrations": list(_migrations(copy)), "customers": counts[0], "unconfirmed_events": counts[1],
                    "sha256": {name: _sha256(path) for name, path in members.items()}}
        plain = Path(work) / "backup.tar"
        _write_tar(plain, manifest, members)
        if public_key_pem is not None:
            sealed = Path(work) / "backup.enc"
            backup_crypto.encrypt_file(plain, sealed, public_key_pem)
            plain = sealed
        os.chmod(plain, 0o600)
        os.replace(plain, dest)  # same folder: atomic, and never a half-written file at dest
    return BackupSummary(dest, dest.stat().st_size, counts[0], counts[1], time.monotonic() - started)


def restore_backup(data_dir: Path, source: Path, *, known_migrations: list[tuple[str, str]], version: str,
                   private_key_pem: bytes | None = None) -> BackupSummary:
    started = time.monotonic()
    datadir.check_access(data_dir)
    datadir.prepare(data_dir)
    with datadir.DataDirLock(data_dir):  # refuses (naming the PID) while an agent runs here
        with tempfile.TemporaryDirectory(dir=data_dir, prefix=".restore-") as work:
            staged = _unpack(source, Path(work), private_key_pem)
            db = staged / DB_NAME
            if _quick_integrity(db) != "ok":
                raise BackupInvalid(source, "la base de datos no pasa la verificación de integridad",
                                    "the database fails its integrity check")
            with sqlite3.connect(db) as conn:
                check_known(db, recorded_migrations(conn), known_migrations, version)
            conn.close()
            counts = _counts(db)
            _swap_in(data_dir, staged)
    return BackupSummary(source, source.stat().st_size, counts[0], counts[1], time.monotonic() - started)


def _unpack(source: Path, work: Path, private_key_pem: bytes | None) -> Path:
    archive = source
    if backup_crypto.is_encrypted(source):
        if private_key_pem is None:
            raise BackupInvalid(source, "está cifrada; indique la clave privada con --key",
                                "it is encrypted; give the private key with --key")
        archive = work / "backup.tar"
        try:
            backup_crypto.decrypt_file(source, archive, private_key_pem)
        except backup_crypto.BackupKeyError as exc:
            raise BackupInvalid(source, f"no se pudo descifrar ({exc})", f"cannot decrypt ({exc})") from None
    staged = work / "staged"
    staged.mkdir(mode=0o700)
    (staged / KEYS).mkdir(mode=0o700)
    try:
        with tarfile.open(archive) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
            expected = manifest["sha256"]
            for member in tar.getmembers():
                if member.name == "manifest.json":
                    continue
                if member.name not in expected or not member.isfile() or not _allowed(member.name):
                    raise BackupInvalid(source, f"contiene {member.name}, que no es parte de una copia",
                                        f"it contains {member.name}, which is not part of a backup")
                target = staged / member.name
                with tar.extractfile(member) as data, open(os.open(target, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as out:  # type: ignore[union-attr]
                    shutil.copyfileobj(data, out)
    except (tarfile.TarError, KeyError, ValueError, TypeError) as exc:
        raise BackupInvalid(source, f"no es una copia de loyalty-agent ({type(exc).__name__})",
                            f"not a loyalty-agent backup ({type(exc).__name__})") from None
    for name, digest in expected.items():
        if not (staged / name).is_file() or _sha256(staged / name) != digest:
            raise BackupInvalid(source, f"{name} falta o no coincide con su suma sha256",
                                f"{name} is missing or does not match its sha256")
    return staged


def _allowed(name: str) -> bool:
    """Only the database and plain files directly in keys/ (never a path out of the folder)."""
    parts = name.split("/")
    return name == DB_NAME or (len(parts) == 2 and parts[0] == KEYS and parts[1] not in ("", ".", ".."))


def _swap_in(data_dir: Path, staged: Path) -> None:
    aside = data_dir / f"before-restore-{time.strftime('%Y%m%dT%H%M%S')}"
    aside.mkdir(mode=0o700)
    # The WAL-identity record (agent.store.guard) belongs to the database being replaced.
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", DB_NAME + ".wal-id", KEYS):
        if (data_dir / name).exists():
            os.replace(data_dir / name, aside / name)
    os.replace(staged / KEYS, data_dir / KEYS)
    os.replace(staged / DB_NAME, data_dir / DB_NAME)
    fd = os.open(data_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_tar(path: Path, manifest: dict, members: dict[str, Path]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        data = json.dumps(manifest, indent=2).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
        tar.addfile(info, io.BytesIO(data))
        for name, source in members.items():
            info = tar.gettarinfo(str(source), arcname=name)
            info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
            with open(source, "rb") as f:
                tar.addfile(info, f)
        out.flush()
        os.fsync(out.fileno())


def _counts(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
        unconfirmed = conn.execute("SELECT count(*) FROM outbox WHERE state != 'confirmed'").fetchone()[0]
    conn.close()
    return customers, unconfirmed


def _migrations(db: Path) -> dict[str, str | None]:
    with sqlite3.connect(db) as conn:
        found = recorded_migrations(conn)
    conn.close()
    return found


def _quick_integrity(db: Path) -> str:
    try:
        with sqlite3.connect(db) as conn:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        conn.close()
        return str(result)
    except sqlite3.DatabaseError as exc:
        return str(exc)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
