"""Checks before SQLite is allowed to touch the station's files, and the WAL's identity record.

Never serve over a damaged store, never delete it: every problem here is a clear Spanish (and
English) error naming the file and what to do, raised before anything is written.

- The folder must be usable by this user: another owner and a read-only folder are told apart.
- ``agent.db`` must start with SQLite's header (a garbage file is not "opened" and overwritten).
- ``PRAGMA quick_check`` (``verify=True``, the running agent's start) on a read-only connection
  before migrations write anything.
- A WAL file is applied to the database when SQLite opens it, whatever database it came from.
  So the store records which WAL belongs to it (``agent.db.wal-id``: the database's identity and
  the WAL header's salts, updated by the checkpointer when the WAL restarts). At start, a WAL
  whose salts do not follow the record, beside a database whose identity the record names, is
  refused: it belongs to another database (an incomplete restore, a copied file).
"""
from __future__ import annotations

import json
import os
import pwd
import sqlite3
import struct
import time
from pathlib import Path

from agent.errors import AgentError

SQLITE_HEADER = b"SQLite format 3\x00"
WAL_HEADER_BYTES = 32
# WAL restarts between two records of the checkpointer (one a second): a crash in between
# leaves a WAL a few restarts ahead of the record, which is still ours.
_SALT_SLACK = 16


class StoreError(AgentError):
    def __init__(self, code: str, es: str, en: str) -> None:
        super().__init__(code, es, en, status=503)


def _owner(path: Path) -> str:
    uid = path.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _me() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _access_error(path: Path, what_es: str, what_en: str) -> StoreError:
    owner = _owner(path)
    if path.stat().st_uid != os.geteuid():
        return StoreError(
            "store_other_owner",
            f"{what_es} {path} pertenece al usuario {owner} y el agente corre como {_me()}: no puede usarla. "
            f"Ejecute el agente como {owner} (sudo -u {owner} ...) o corrija el dueño; no se modificó nada.",
            f"{what_en} {path} belongs to user {owner} and the agent runs as {_me()}: it cannot use it. "
            f"Run the agent as {owner} (sudo -u {owner} ...) or fix the owner; nothing was changed.")
    return StoreError(
        "store_read_only",
        f"{what_es} {path} es de solo lectura para el agente: no puede guardar datos. Dé permiso de escritura "
        "(chmod u+w) o revise que el disco no esté montado como solo lectura; no se modificó nada.",
        f"{what_en} {path} is read-only for the agent: it cannot store data. Grant write permission "
        "(chmod u+w) or check the disk is not mounted read-only; nothing was changed.")


access_error = _access_error  # also used by agent.store.datadir before a one-shot command opens anything


def preflight(db_path: Path) -> None:
    """Raise a ``StoreError`` if the folder or the files cannot safely be opened for writing."""
    folder = db_path.parent
    for ancestor in reversed(folder.absolute().parents):  # a folder on the way we cannot enter
        if ancestor.exists() and not os.access(ancestor, os.X_OK):
            raise _access_error(ancestor, "La carpeta", "The folder")
    if not folder.exists():
        try:
            folder.mkdir(parents=True, mode=0o700)
        except PermissionError:
            parent = next(p for p in folder.parents if p.exists())
            raise _access_error(parent, "La carpeta", "The folder") from None
    if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
        raise _access_error(folder, "La carpeta de datos", "The data folder")
    for path in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise _access_error(path, "El archivo", "The file")
    if db_path.exists() and db_path.stat().st_size > 0:
        with open(db_path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
        if header != SQLITE_HEADER:
            raise StoreError(
                "store_not_a_database",
                f"{db_path} no es una base de datos SQLite (encabezado dañado o archivo equivocado). No se abrió "
                "ni se borró: restaure la copia de seguridad o consulte a soporte.",
                f"{db_path} is not an SQLite database (damaged header or wrong file). It was neither opened nor "
                "deleted: restore the backup or call support.")
    check_wal_belongs(db_path)


def damaged(db_path: Path, detail: str) -> StoreError:
    return StoreError(
        "store_damaged",
        f"La base de datos {db_path} está dañada ({detail}). El agente no arranca sobre datos dañados y no "
        "borró nada: restaure la copia de seguridad o consulte a soporte.",
        f"The database {db_path} is damaged ({detail}). The agent does not start over damaged data and "
        "deleted nothing: restore the backup or call support.")


def quick_check(db_path: Path) -> None:
    """``PRAGMA quick_check`` on a read-only connection; raise ``store_damaged`` if it fails."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error as exc:
        raise damaged(db_path, type(exc).__name__) from None
    try:
        rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)").fetchall()]
    except sqlite3.DatabaseError as exc:
        raise damaged(db_path, str(exc)) from None
    finally:
        conn.close()
    if rows != ["ok"]:
        raise damaged(db_path, "; ".join(rows)[:300])


# ---- WAL identity --------------------------------------------------------------------------

def _record_path(db_path: Path) -> Path:
    return Path(f"{db_path}.wal-id")


def wal_salts(db_path: Path) -> tuple[int, int] | None:
    """The current WAL header's (salt-1, salt-2), or None when there is no WAL content."""
    try:
        with open(f"{db_path}-wal", "rb") as f:
            header = f.read(WAL_HEADER_BYTES)
    except FileNotFoundError:
        return None
    if len(header) < WAL_HEADER_BYTES:
        return None
    return struct.unpack(">II", header[16:24])


def main_file_identity(db_path: Path) -> str | None:
    """The identity stored in the database file itself, ignoring any WAL (``immutable=1``)."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?immutable=1", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute("SELECT identity FROM store_identity WHERE one = 1").fetchone()
        return row[0] if row else None
    except sqlite3.DatabaseError:
        return None  # not created yet (a new store) or not checkpointed yet
    finally:
        conn.close()


def record_wal(db_path: Path, identity: str, last: tuple[int, int] | None = None) -> tuple[int, int] | None:
    """Record the WAL that belongs to ``identity`` (atomically); returns the salts recorded."""
    salts = wal_salts(db_path)
    if salts is None or salts == last:
        return last
    record = _record_path(db_path)
    tmp = record.with_name(record.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # 0600 like the database, whatever the umask
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps({"identity": identity, "salt1": salts[0], "salt2": salts[1]}))
    os.replace(tmp, record)
    return salts


def check_wal_belongs(db_path: Path) -> None:
    if _wal_is_foreign(db_path):
        # Another process of this station may be starting a new WAL right now and recording it
        # a moment later: look again before calling it foreign.
        time.sleep(1.0)
        if _wal_is_foreign(db_path):
            raise _foreign(db_path)


def _wal_is_foreign(db_path: Path) -> bool:
    salts = wal_salts(db_path)
    if salts is None or not db_path.exists():
        return False
    try:
        record = json.loads(_record_path(db_path).read_text())
    except (FileNotFoundError, ValueError):
        return False  # a store from before the record existed, or a new one: nothing to compare
    identity = main_file_identity(db_path)
    if identity is None or record.get("identity") != identity:
        return False  # the record is not about this database file: it cannot judge the WAL
    ahead = (salts[0] - int(record.get("salt1", -1))) % 2**32
    return not ((ahead == 0 and salts[1] == record.get("salt2")) or 0 < ahead <= _SALT_SLACK)


def _foreign(db_path: Path) -> StoreError:
    return StoreError(
        "store_foreign_wal",
        f"El archivo {db_path}-wal no pertenece a esta base de datos (viene de otra copia o de una restauración "
        "incompleta). No se aplicó ni se borró. Si la base restaurada es la correcta, mueva ese archivo fuera "
        "de la carpeta; si no, restaure juntos agent.db y agent.db-wal.",
        f"The file {db_path}-wal does not belong to this database (it comes from another copy or an incomplete "
        "restore). It was neither applied nor deleted. If the restored database is the right one, move that "
        "file out of the folder; otherwise restore agent.db and agent.db-wal together.")


class StorageFull(AgentError):
    def __init__(self) -> None:
        super().__init__(
            "storage_full",
            "El disco de la estación está lleno: no se guardó nada. Libere espacio o avise a soporte técnico; "
            "las consultas siguen funcionando.",
            "The station's disk is full: nothing was saved. Free some space or call technical support; "
            "lookups keep working.",
            status=507, extra={"reason": "disk"})
