"""Encrypting a backup to head office's public key (only head office can read it).

Hybrid: a fresh AES-256-GCM key per backup, given to the recipient by X25519 (ECDH + HKDF) or
RSA-OAEP-SHA256, whichever key head office provides (PEM). The archive is sealed in 1 MiB chunks
(constant memory on a Raspberry Pi, whatever the database size); each chunk's nonce is its
index and its associated data says whether it is the last, so chunks cannot be reordered,
dropped or the file cut short without the decryption failing.

File: MAGIC, 4-byte header length, JSON header, then per chunk a 4-byte length and the sealed chunk.
"""
from __future__ import annotations

import base64
import json
import os
import struct
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"LOYALTY-BACKUP-ENC1\n"
CHUNK = 1 << 20
_HKDF_INFO = b"loyalty-agent backup v1"


class BackupKeyError(ValueError):
    """The key file is not a usable X25519 or RSA key, or does not open this backup."""


def is_encrypted(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(MAGIC)) == MAGIC


def encrypt_file(plain: Path, sealed: Path, public_key_pem: bytes) -> None:
    key = AESGCM.generate_key(bit_length=256)
    header = _wrap_key(key, public_key_pem)
    head = json.dumps(header, sort_keys=True).encode()
    aad_base = MAGIC + head
    fd = os.open(sealed, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(plain, "rb") as src, os.fdopen(fd, "wb") as out:
        out.write(MAGIC + struct.pack(">I", len(head)) + head)
        aead = AESGCM(key)
        index = 0
        chunk = src.read(CHUNK)
        while True:
            following = src.read(CHUNK)
            last = not following
            sealed_chunk = aead.encrypt(_nonce(index), chunk, aad_base + (b"\x01" if last else b"\x00"))
            out.write(struct.pack(">I", len(sealed_chunk)) + sealed_chunk)
            if last:
                break
            chunk, index = following, index + 1
        out.flush()
        os.fsync(out.fileno())


def decrypt_file(sealed: Path, plain: Path, private_key_pem: bytes) -> None:
    fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(sealed, "rb") as src, os.fdopen(fd, "wb") as out:
        if src.read(len(MAGIC)) != MAGIC:
            raise BackupKeyError("not an encrypted loyalty-agent backup")
        (length,) = struct.unpack(">I", _exact(src, 4))
        head = _exact(src, length)
        key = _unwrap_key(json.loads(head), private_key_pem)
        aead = AESGCM(key)
        aad_base = MAGIC + head
        index = 0
        while True:
            size_bytes = src.read(4)
            if not size_bytes:
                raise BackupKeyError("backup is truncated (no final chunk)")
            (size,) = struct.unpack(">I", size_bytes)
            sealed_chunk = _exact(src, size)
            last = not src.peek(1)  # type: ignore[attr-defined]  # a BufferedReader: b"" only at the end
            try:
                out.write(aead.decrypt(_nonce(index), sealed_chunk, aad_base + (b"\x01" if last else b"\x00")))
            except Exception as exc:  # cryptography raises InvalidTag
                raise BackupKeyError("backup does not decrypt with this key, or was altered") from exc
            if last:
                return
            index += 1


def _wrap_key(key: bytes, public_key_pem: bytes) -> dict[str, str]:
    try:
        public = serialization.load_pem_public_key(public_key_pem)
    except ValueError as exc:
        raise BackupKeyError("not a PEM public key") from exc
    if isinstance(public, x25519.X25519PublicKey):
        ephemeral = x25519.X25519PrivateKey.generate()
        shared = ephemeral.exchange(public)
        epk = ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        wrap = AESGCM(_kdf(shared, epk)).encrypt(b"\x00" * 12, key, b"key")
        return {"alg": "X25519-HKDF-SHA256/A256GCM", "epk": _b64(epk), "wrapped_key": _b64(wrap)}
    if isinstance(public, rsa.RSAPublicKey):
        wrapped = public.encrypt(key, _oaep())
        return {"alg": "RSA-OAEP-SHA256/A256GCM", "wrapped_key": _b64(wrapped)}
    raise BackupKeyError("head office key must be X25519 or RSA")


def _unwrap_key(header: dict[str, str], private_key_pem: bytes) -> bytes:
    try:
        private = serialization.load_pem_private_key(private_key_pem, password=None)
        if header["alg"].startswith("X25519") and isinstance(private, x25519.X25519PrivateKey):
            epk = base64.b64decode(header["epk"])
            shared = private.exchange(x25519.X25519PublicKey.from_public_bytes(epk))
            return AESGCM(_kdf(shared, epk)).decrypt(b"\x00" * 12, base64.b64decode(header["wrapped_key"]), b"key")
        if header["alg"].startswith("RSA") and isinstance(private, rsa.RSAPrivateKey):
            return private.decrypt(base64.b64decode(header["wrapped_key"]), _oaep())
    except Exception as exc:  # noqa: BLE001 - any failure here means "this key does not open it"
        raise BackupKeyError("backup does not decrypt with this key") from exc
    raise BackupKeyError("backup does not decrypt with this key")


def _kdf(shared: bytes, epk: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=epk, info=_HKDF_INFO).derive(shared)


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _nonce(index: int) -> bytes:
    return struct.pack(">4xQ", index)  # unique per chunk under a key used for one backup only


def _exact(src: BinaryIO, size: int) -> bytes:
    data = src.read(size)
    if len(data) != size:
        raise BackupKeyError("backup is truncated")
    return data


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
