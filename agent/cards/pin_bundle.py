"""Attendant PIN bundles from head office: format, signing (head office side) and verification.

A bundle file is JSON::

    {"payload": {"format": "attendant-pins/1", "version": 12, "stations": ["st-001"] | ["*"],
                 "issued_at": "2025-01-01T00:00:00Z", "expires_at": "2025-02-01T00:00:00Z",
                 "attendants": [{"id": "P-017", "pin_hash": "$argon2id$v=19$m=19456,t=2,p=1$..."}]},
     "signature": "<base64 Ed25519 over the canonical payload>"}

The canonical payload is ``json.dumps(payload, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` in UTF-8, so whitespace or key order in the file do not matter.
``pin_hash`` is argon2id (PHC string) of HMAC-SHA256(station pepper, PIN): the pepper is a
per-station secret provisioned by head office, so a leaked bundle cannot be brute-forced
without also stealing that station's key file (a 4-6 digit PIN space alone is trivial).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError
from argon2 import extract_parameters
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from agent.errors import AgentError

FORMAT = "attendant-pins/1"
# Chosen cost: OWASP minimum for argon2id (m=19 MiB, t=2, p=1); ~45 ms per verify on the
# shared CI machine (bench/bench_cards.py). Bundles with weaker or absurdly expensive
# parameters are refused (weak = cheap to brute-force; huge = a signed bundle could DoS us).
HASH_PARAMS = {"time_cost": 2, "memory_cost": 19456, "parallelism": 1}
MIN_MEMORY_KIB, MAX_MEMORY_KIB = 19456, 262144
MIN_TIME, MAX_TIME = 2, 10
_ATTENDANT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_PIN = re.compile(r"^\d{4,8}$")


class PinBundleError(AgentError):
    def __init__(self, code: str, es: str, en: str) -> None:
        super().__init__(code, es, en, status=422)


@dataclass(frozen=True)
class PinBundle:
    version: int
    stations: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    attendants: dict[str, str]  # attendant id -> PHC hash


def hasher() -> PasswordHasher:
    return PasswordHasher(type=Type.ID, **HASH_PARAMS)


def peppered(pepper: bytes, pin: str) -> bytes:
    """HMAC-SHA256(pepper, PIN): what argon2id hashes (never the bare PIN)."""
    return hmac.new(pepper, pin.encode("utf-8"), hashlib.sha256).digest()


def canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_bundle(private_key: Ed25519PrivateKey, *, version: int, stations: list[str],
                 issued_at: datetime, expires_at: datetime, pins: dict[str, str],
                 pepper: bytes) -> bytes:
    """Head office side (and tests): hash each PIN for one station's pepper and sign.

    A bundle for several stations needs one shared pepper; normally head office builds one
    bundle per station.
    """
    ph = hasher()
    attendants = []
    for attendant_id, pin in sorted(pins.items()):
        if not _ATTENDANT_ID.match(attendant_id) or not _PIN.match(pin):
            raise ValueError("attendant ids are [A-Za-z0-9_.-]{1,32}; PINs are 4-8 digits")
        attendants.append({"id": attendant_id, "pin_hash": ph.hash(peppered(pepper, pin))})
    payload = {"format": FORMAT, "version": version, "stations": stations,
               "issued_at": _iso(issued_at), "expires_at": _iso(expires_at),
               "attendants": attendants}
    signature = private_key.sign(canonical(payload))
    return json.dumps({"payload": payload, "signature": base64.b64encode(signature).decode()},
                      indent=1).encode()


def load_public_key(text: str) -> Ed25519PublicKey:
    raw = base64.b64decode(text, validate=True)
    return Ed25519PublicKey.from_public_bytes(raw)


def _bad(code: str, es: str, en: str) -> PinBundleError:
    return PinBundleError(code, es, en)


def _parse_time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise _bad("pin_bundle_malformed", f"Paquete de PIN inválido: falta {name}.", f"PIN bundle: missing {name}.")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _bad("pin_bundle_malformed", f"Paquete de PIN inválido: fecha {name} incorrecta.",
                   f"PIN bundle: bad {name} timestamp.") from None
    if dt.tzinfo is None:
        raise _bad("pin_bundle_malformed", f"Paquete de PIN inválido: {name} sin zona horaria.",
                   f"PIN bundle: {name} has no time zone.")
    return dt


def verify_bundle(data: bytes, public_key: Ed25519PublicKey, *, station_id: str,
                  now: datetime) -> PinBundle:
    """Signature first (nothing in an unsigned document is trusted), then content and dates."""
    try:
        document = json.loads(data)
        payload = document["payload"]
        signature = base64.b64decode(document["signature"], validate=True)
        if not isinstance(payload, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise _bad("pin_bundle_malformed", "El archivo no es un paquete de PIN válido.",
                   "The file is not a valid PIN bundle.") from None
    try:
        public_key.verify(signature, canonical(payload))
    except InvalidSignature:
        raise _bad("pin_bundle_bad_signature",
                   "La firma del paquete de PIN no es válida: el archivo fue alterado o no viene de la oficina central.",
                   "The PIN bundle signature is invalid: the file was altered or is not from head office.") from None
    if payload.get("format") != FORMAT:
        raise _bad("pin_bundle_malformed", "Formato de paquete de PIN no soportado.", "Unsupported PIN bundle format.")
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _bad("pin_bundle_malformed", "Versión de paquete de PIN inválida.", "Invalid PIN bundle version.")
    stations = payload.get("stations")
    if not isinstance(stations, list) or not all(isinstance(s, str) for s in stations):
        raise _bad("pin_bundle_malformed", "Lista de estaciones inválida.", "Invalid station list.")
    if "*" not in stations and station_id not in stations:
        raise _bad("pin_bundle_wrong_station", "Este paquete de PIN es para otra estación.",
                   "This PIN bundle is for another station.")
    issued_at = _parse_time(payload.get("issued_at"), "issued_at")
    expires_at = _parse_time(payload.get("expires_at"), "expires_at")
    if expires_at <= now:
        raise _bad("pin_bundle_expired", "El paquete de PIN está vencido. Solicite uno nuevo a la oficina central.",
                   "The PIN bundle has expired. Request a new one from head office.")
    attendants: dict[str, str] = {}
    for entry in payload.get("attendants") or []:
        if not isinstance(entry, dict):
            raise _bad("pin_bundle_malformed", "Entrada de playero inválida.", "Invalid attendant entry.")
        attendant_id, pin_hash = entry.get("id"), entry.get("pin_hash")
        if not isinstance(attendant_id, str) or not _ATTENDANT_ID.match(attendant_id) or attendant_id in attendants:
            raise _bad("pin_bundle_malformed", "Código de playero inválido o repetido.", "Invalid or duplicate attendant id.")
        _check_hash(pin_hash)
        attendants[attendant_id] = pin_hash
    return PinBundle(version, tuple(stations), issued_at, expires_at, attendants)


def _check_hash(pin_hash: Any) -> None:
    try:
        if not isinstance(pin_hash, str):
            raise InvalidHashError
        params = extract_parameters(pin_hash)
    except (InvalidHashError, ValueError):
        raise _bad("pin_bundle_malformed", "Hash de PIN inválido.", "Invalid PIN hash.") from None
    if (params.type is not Type.ID or not MIN_MEMORY_KIB <= params.memory_cost <= MAX_MEMORY_KIB
            or not MIN_TIME <= params.time_cost <= MAX_TIME or params.parallelism > 4):
        raise _bad("pin_bundle_weak_hash", "Parámetros de hash de PIN fuera de la política (argon2id, m>=19 MiB, t>=2).",
                   "PIN hash parameters outside policy (argon2id, m>=19 MiB, t>=2).")
