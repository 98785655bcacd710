"""A synthetic head-office signing key for tests (never a real key) and helpers to sign with it."""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.queue.signed_config import sign_config

# Fixed bytes so a failing run can be replayed; this key signs nothing outside the test suite.
HEAD_OFFICE_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def public_b64(key: Ed25519PrivateKey = HEAD_OFFICE_KEY) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def signed(kind: str, payload: dict[str, Any] | str, key: Ed25519PrivateKey = HEAD_OFFICE_KEY) -> bytes:
    document = json.loads(payload) if isinstance(payload, str) else payload
    return sign_config(key, kind, document)


def write_private_pem(path: Path, key: Ed25519PrivateKey = HEAD_OFFICE_KEY) -> Path:
    """The key as the hub reads it (central.signing_key_file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return path
