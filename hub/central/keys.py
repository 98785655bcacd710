"""Head office's signing key and the stations' PIN peppers, kept in files (never in PostgreSQL:
database dumps travel further than a key folder does)."""
from __future__ import annotations

import base64
import os
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.keys import write_secret
from hub.central.errors import CentralError

STATION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def generate_signing_key(path: Path) -> Ed25519PrivateKey:
    """Create a new key file; never overwrites one (stations trust the old public key)."""
    if path.exists():
        raise CentralError("key_exists", f"ya existe {path}: no se reemplaza una clave en uso",
                           f"{path} already exists: a key in use is never replaced")
    key = Ed25519PrivateKey.generate()
    write_secret(path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return key


def load_signing_key(path: Path | None) -> Ed25519PrivateKey:
    if path is None:
        raise CentralError("no_signing_key", "falta central.signing_key_file (la clave que firma la configuración)",
                           "central.signing_key_file is not set (the key that signs configuration)")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise CentralError("no_signing_key", f"no existe la clave de firma {path}",
                           f"signing key {path} does not exist") from None
    except ValueError:
        raise CentralError("bad_signing_key", f"{path} no es una clave privada PEM legible",
                           f"{path} is not a readable PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CentralError("bad_signing_key", f"{path} no es una clave Ed25519", f"{path} is not an Ed25519 key")
    return key


def load_pin_key(signing_key_file: Path | None, pin_signing_key_file: Path | None) -> Ed25519PrivateKey:
    """The key that signs PIN bundles: its own (``central.pin_signing_key_file``) when set, so a
    leaked configuration key cannot mint attendant PINs and the other way round; otherwise the
    configuration key (one key for both, the default)."""
    return load_signing_key(pin_signing_key_file or signing_key_file)


def public_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _pepper_path(pepper_dir: Path | None, station_id: str) -> Path:
    if pepper_dir is None:
        raise CentralError("no_pepper_dir", "falta central.pepper_dir (carpeta de claves PIN de las estaciones)",
                           "central.pepper_dir is not set (folder of the stations' PIN keys)")
    if not STATION_ID.match(station_id):
        raise CentralError("bad_station", "código de estación inválido ([A-Za-z0-9_-], hasta 64)",
                           "invalid station id ([A-Za-z0-9_-], up to 64)")
    return pepper_dir / f"{station_id}.key"


def create_pepper(pepper_dir: Path | None, station_id: str) -> bytes:
    path = _pepper_path(pepper_dir, station_id)
    if path.exists():
        return load_pepper(pepper_dir, station_id)
    pepper = os.urandom(32)
    write_secret(path, pepper)
    return pepper


def load_pepper(pepper_dir: Path | None, station_id: str) -> bytes:
    path = _pepper_path(pepper_dir, station_id)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CentralError("station_not_provisioned",
                           f"la estación {station_id} no tiene clave PIN: ejecute loyalty-hub station add",
                           f"station {station_id} has no PIN key: run loyalty-hub station add") from None
    if len(data) != 32:
        raise CentralError("bad_pepper", f"la clave PIN de {station_id} está dañada", f"{station_id}'s PIN key is corrupt")
    return data
