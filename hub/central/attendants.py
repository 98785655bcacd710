"""Attendants per station and their signed, versioned, expiring PIN bundles.

The hub produces exactly what the station verifies (``agent.cards.pin_bundle``): format
``attendant-pins/1``, argon2id with the agent's parameters over HMAC-SHA256(station pepper,
PIN), Ed25519 over the canonical payload. The PIN is hashed when it is set and then forgotten;
a bundle is rebuilt from the stored hashes, so re-issuing one (a lock, an expiry) needs no PIN.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.cards.pin_bundle import FORMAT, canonical, hasher, peppered
from hub.central import audit
from hub.central.errors import CentralError
from hub.central.keys import load_pepper

ATTENDANT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
MAX_PIN = 8  # the agent accepts 4-8 digits


def check_pin(pin: str, min_length: int) -> None:
    """The policy: digits only, ``min_length``..8 long, not one repeated digit, not a run."""
    if not pin.isascii() or not pin.isdigit():
        raise CentralError("pin_not_digits", "el PIN debe tener solo dígitos", "the PIN must be digits only")
    if not min_length <= len(pin) <= MAX_PIN:
        raise CentralError("pin_length", f"el PIN debe tener entre {min_length} y {MAX_PIN} dígitos",
                           f"the PIN must have {min_length} to {MAX_PIN} digits")
    steps = {int(b) - int(a) for a, b in zip(pin, pin[1:])}
    if len(set(pin)) == 1 or steps in ({1}, {-1}):
        raise CentralError("pin_trivial", "PIN demasiado fácil (un dígito repetido o una secuencia)",
                           "PIN too easy to guess (one repeated digit or a run)")


def _check_id(attendant_id: str) -> None:
    if not ATTENDANT_ID.match(attendant_id):
        raise CentralError("bad_attendant", "código de playero inválido ([A-Za-z0-9_.-], hasta 32)",
                           "invalid attendant id ([A-Za-z0-9_.-], up to 32)")


def _require_station(conn: psycopg.Connection, station_id: str) -> None:
    if conn.execute("SELECT 1 FROM central_stations WHERE station_id = %s", (station_id,)).fetchone() is None:
        raise CentralError("unknown_station", f"estación desconocida: {station_id} (loyalty-hub station add)",
                           f"unknown station: {station_id} (loyalty-hub station add)")


def add_attendant(conn: psycopg.Connection, actor: str, station_id: str, attendant_id: str, name: str) -> None:
    _check_id(attendant_id)
    if not 1 <= len(name.strip()) <= 80:
        raise CentralError("bad_name", "nombre de playero vacío o de más de 80 caracteres",
                           "attendant name empty or over 80 characters")
    with conn.transaction():
        _require_station(conn, station_id)
        row = conn.execute("INSERT INTO attendants(station_id, attendant_id, display_name) VALUES (%s, %s, %s)"
                           " ON CONFLICT DO NOTHING RETURNING 1", (station_id, attendant_id, name.strip())).fetchone()
        if row is None:
            raise CentralError("attendant_exists", f"el playero {attendant_id} ya existe en {station_id}",
                               f"attendant {attendant_id} already exists at {station_id}")
        audit.record(conn, actor, "attendant.created", {"station": station_id, "attendant": attendant_id})


def set_pin(conn: psycopg.Connection, actor: str, station_id: str, attendant_id: str, pin: str, *,
            pepper_dir: Path | None, min_length: int) -> None:
    """Set or reset the PIN (and unlock: a supervisor resetting a PIN has seen the attendant)."""
    check_pin(pin, min_length)
    pin_hash = hasher().hash(peppered(load_pepper(pepper_dir, station_id), pin))
    with conn.transaction():
        row = conn.execute("UPDATE attendants SET pin_hash = %s, pin_set_at = now(), locked = false, updated_at = now()"
                           " WHERE station_id = %s AND attendant_id = %s RETURNING 1",
                           (pin_hash, station_id, attendant_id)).fetchone()
        if row is None:
            raise _unknown(station_id, attendant_id)
        audit.record(conn, actor, "attendant.pin_set", {"station": station_id, "attendant": attendant_id})


def set_locked(conn: psycopg.Connection, actor: str, station_id: str, attendant_id: str, locked: bool) -> None:
    with conn.transaction():
        row = conn.execute("UPDATE attendants SET locked = %s, updated_at = now() WHERE station_id = %s"
                           " AND attendant_id = %s RETURNING 1", (locked, station_id, attendant_id)).fetchone()
        if row is None:
            raise _unknown(station_id, attendant_id)
        audit.record(conn, actor, "attendant.locked" if locked else "attendant.unlocked",
                     {"station": station_id, "attendant": attendant_id})


def _unknown(station_id: str, attendant_id: str) -> CentralError:
    return CentralError("unknown_attendant", f"no existe el playero {attendant_id} en {station_id}",
                        f"no attendant {attendant_id} at {station_id}")


@dataclass(frozen=True)
class Bundle:
    station_id: str
    version: int
    attendants: int
    body: bytes


def build_bundle(conn: psycopg.Connection, key: Ed25519PrivateKey, station_id: str, *, days: int,
                 now: datetime | None = None) -> Bundle:
    """Sign the next version of ``station_id``'s bundle and store it (not yet published)."""
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    with conn.transaction():
        _require_station(conn, station_id)
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('pin_bundle:' || %s))", (station_id,))
        rows = conn.execute("SELECT attendant_id, pin_hash FROM attendants WHERE station_id = %s AND NOT locked"
                            " AND pin_hash IS NOT NULL ORDER BY attendant_id", (station_id,)).fetchall()
        version = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM pin_bundles WHERE station_id = %s",
                               (station_id,)).fetchone()[0]
        payload = {"format": FORMAT, "version": version, "stations": [station_id],
                   "issued_at": _iso(now), "expires_at": _iso(now + timedelta(days=days)),
                   "attendants": [{"id": a, "pin_hash": h} for a, h in rows]}
        body = json.dumps({"payload": payload, "signature": base64.b64encode(key.sign(canonical(payload))).decode()},
                          indent=1).encode()
        conn.execute("INSERT INTO pin_bundles(station_id, version, issued_at, expires_at, attendants, body)"
                     " VALUES (%s, %s, %s, %s, %s, %s)",
                     (station_id, version, now, now + timedelta(days=days), len(rows), body.decode()))
    return Bundle(station_id, version, len(rows), body)


def mark_published(conn: psycopg.Connection, actor: str, bundle: Bundle) -> None:
    with conn.transaction():
        conn.execute("UPDATE pin_bundles SET published_at = now() WHERE station_id = %s AND version = %s",
                     (bundle.station_id, bundle.version))
        audit.record(conn, actor, "pin_bundle.published", {"station": bundle.station_id, "version": bundle.version,
                                                           "attendants": bundle.attendants})


def _iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
