"""The data folder: private whatever the umask, one agent at a time, clear permission errors.

The folder holds every customer's personal data and the keys that decrypt fingerprint
templates and ID photos, so it is 0700 and the database files 0600 even when the agent is
started from a shell with umask 022 (``make run``, a technician's ``sudo``). SQLite creates the
``-wal`` and ``-shm`` files with the database file's mode, so creating ``agent.db`` 0600 before
SQLite opens it covers all three.

One agent per folder: ``run`` takes an exclusive ``flock`` on ``agent.lock`` before it connects to
head office or binds its port, and writes its PID there, so a second agent (a technician's
``loyalty-agent run`` beside the service) stops at once with the PID that holds it instead of
kicking the service off MQTT. The kernel drops the lock when the process dies, crash included.
"""
from __future__ import annotations

import errno
import fcntl
import getpass
import os
import stat
from pathlib import Path

from agent.errors import AgentError
from agent.store import guard

DIR_MODE = 0o700
FILE_MODE = 0o600
LOCK_NAME = "agent.lock"


class DataDirPermission(AgentError):
    """The agent may not create, read or write its data folder or a file in it."""

    def __init__(self, path: Path, action_es: str, action_en: str, *, is_file: bool = False) -> None:
        user = _user()
        folder = path.parent if is_file else path
        super().__init__(
            "data_dir_permission",
            f"sin permiso para {action_es} {path} (usuario {user}). En una estación los datos son del "
            f"usuario del servicio: use sudo -u loyalty-agent loyalty-agent ..., o corrija el dueño con "
            f"sudo chown -R loyalty-agent:loyalty-agent {folder}",
            f"permission denied to {action_en} {path} (user {user}). On a station the data belongs to the "
            f"service user: use sudo -u loyalty-agent loyalty-agent ..., or fix the owner with "
            f"sudo chown -R loyalty-agent:loyalty-agent {folder}",
            status=500,
        )


class AgentAlreadyRunning(AgentError):
    def __init__(self, data_dir: Path, pid: str) -> None:
        super().__init__(
            "agent_already_running",
            f"otro agente ya usa la carpeta de datos {data_dir} (PID {pid}); deténgalo primero "
            f"(sudo systemctl stop loyalty-agent) o use otra --data-dir",
            f"another agent already uses the data folder {data_dir} (PID {pid}); stop it first "
            f"(sudo systemctl stop loyalty-agent) or use another --data-dir",
            status=409,
        )


def prepare(data_dir: Path) -> None:
    """Create the folder 0700 (or tighten one we own that is open to others)."""
    try:
        data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        info = data_dir.stat()
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
            data_dir.chmod(DIR_MODE)
    except PermissionError:
        raise DataDirPermission(data_dir, "crear o usar la carpeta de datos", "create or use the data folder") from None


def check_access(data_dir: Path) -> None:
    """A folder on the way, or the data folder itself, that this user may not use is the store
    guard's clear error (another owner / read-only), not a missing station or a traceback."""
    for ancestor in reversed(data_dir.absolute().parents):  # from / down: stop at the first closed one
        if not os.access(ancestor, os.X_OK) and os.path.lexists(ancestor):
            raise guard.access_error(ancestor, "La carpeta", "The folder")
    if os.path.isdir(data_dir) and not os.access(data_dir, os.R_OK | os.W_OK | os.X_OK):
        raise guard.access_error(data_dir, "La carpeta de datos", "The data folder")


def secure_file(path: Path) -> None:
    """Create ``path`` 0600 if missing, or tighten it if it is ours and open to others."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except PermissionError:
        raise DataDirPermission(path, "escribir", "write", is_file=True) from None
    try:
        info = os.fstat(fd)
        if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def secure_database_files(database: Path) -> None:
    """The database and its WAL/shm companions, 0600 (companions only if they exist)."""
    secure_file(database)
    for suffix in ("-wal", "-shm"):
        companion = database.with_name(database.name + suffix)
        if companion.exists():
            secure_file(companion)


def translate_sqlite_error(exc: Exception, database: Path) -> AgentError | None:
    """A permission problem reported by SQLite, as a ``DataDirPermission``; None for anything else."""
    if isinstance(exc, PermissionError):
        return DataDirPermission(Path(exc.filename or database), "escribir", "write", is_file=True)
    text = str(exc).lower()
    if "readonly database" in text or "unable to open database file" in text or "permission" in text:
        return DataDirPermission(database, "escribir en la base de datos", "write to the database", is_file=True)
    return None


class DataDirLock:
    """An exclusive lock on the data folder for the life of this process (or until ``release``)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "DataDirLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        except PermissionError:
            raise DataDirPermission(self.path, "crear", "create", is_file=True) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "desconocido"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise AgentAlreadyRunning(self.path.parent, holder) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "DataDirLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.geteuid())
