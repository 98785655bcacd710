"""Encrypted at-rest storage of ID-card photos (AES-256-GCM), with retention deletion.

Each image is one file ``<image_id>.bin`` = 12-byte nonce + ciphertext. The associated data binds
the ciphertext to its capture id, side and image id, so a file swapped between captures or
sides fails to decrypt instead of showing the wrong person's card. The key lives outside the
database (``agent.keys.load_or_create_key``); images are never logged.
"""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent.idcard.errors import CaptureError

SIDES = ("front", "back")


def _aad(capture_id: str, side: str, image_id: str) -> bytes:
    return f"idcard-image:v1:{capture_id}:{side}:{image_id}".encode()


class ImageVault:
    def __init__(self, directory: Path, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("AES-256 key must be 32 bytes")
        self.directory = Path(directory)
        self._aead = AESGCM(key)

    def _path(self, image_id: str) -> Path:
        if not image_id.isalnum():
            raise CaptureError("unknown_image", "imagen desconocida", "unknown image", status=404)
        return self.directory / f"{image_id}.bin"

    def put(self, capture_id: str, side: str, image: bytes) -> str:
        if side not in SIDES:
            raise ValueError(side)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        image_id = secrets.token_hex(16)
        nonce = os.urandom(12)
        blob = nonce + self._aead.encrypt(nonce, image, _aad(capture_id, side, image_id))
        tmp = self._path(image_id).with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(blob)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self._path(image_id))
        return image_id

    def get(self, capture_id: str, side: str, image_id: str) -> bytes:
        try:
            blob = self._path(image_id).read_bytes()
            return self._aead.decrypt(blob[:12], blob[12:], _aad(capture_id, side, image_id))
        except (FileNotFoundError, InvalidTag, ValueError):
            raise CaptureError("unknown_image", "imagen desconocida o alterada", "unknown or tampered image",
                               status=404) from None

    def exists(self, image_id: str) -> bool:
        return image_id.isalnum() and self._path(image_id).is_file()

    def delete(self, image_id: str) -> bool:
        try:
            self._path(image_id).unlink()
            return True
        except FileNotFoundError:
            return False

    def purge_older_than(self, seconds: float, *, now: float | None = None) -> int:
        """Delete images stored more than ``seconds`` ago (by file mtime); returns how many."""
        if not self.directory.exists():
            return 0
        limit = (now if now is not None else time.time()) - seconds
        removed = 0
        for path in self.directory.glob("*.bin"):
            if path.stat().st_mtime <= limit:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
