"""Encryption keys kept outside the database.

A key file lives in its own directory (mode 0700), is 32 random bytes, mode 0600, and is
created atomically (write to a temporary file, fsync, ``link``) so two processes starting
at once agree on one key and a power cut never leaves a half-written key behind.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

KEY_BYTES = 32
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def load_or_create_key(key_dir: Path, name: str) -> bytes:
    """Return the key called ``name``, creating it on first use."""
    if not _NAME.match(name):
        raise ValueError(f"invalid key name {name!r}")
    key_dir = Path(key_dir)
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = key_dir / f"{name}.key"
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    tmp = key_dir / f".{name}.{os.getpid()}.tmp"
    write_secret(tmp, os.urandom(KEY_BYTES))
    try:
        os.link(tmp, path)  # fails if another process won the race: then use its key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(key_dir)
    return _read(path)


def write_secret(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` with mode 0600 from its creation (never readable by others for a
    moment), in a 0700 folder, and fsync it. ``exclusive``: refuse to replace an existing file."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC), 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) != KEY_BYTES:
        raise ValueError(f"key file {path} is corrupt ({len(data)} bytes)")
    return data


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
