"""Attendant PIN verification with persisted, escalating lockout.

- The current bundle (see ``pin_bundle``) lives in SQLite; a new one must have a higher version.
- ``verify(attendant_id, pin)`` costs one argon2id verification whether or not the attendant
  exists (unknown ids are checked against a dummy hash with the same parameters) and fails with
  the same error, status and timing for "unknown attendant" and "wrong PIN". Failures are counted
  per attendant id (known or not, so lockout does not reveal which ids exist either).
- ``max_failures`` failures in a row lock the id for ``lockout_base_s``, doubling with each
  further lockout up to ``lockout_max_s``; the count survives restarts (it is in SQLite). A
  correct PIN resets the run of failures but not the escalation (the lockout count): that is only
  forgotten after ``lockout_forget_s`` without a failure, so interleaving one known PIN with guesses
  does not keep lockouts short. Each lockout queues an ``attendant.locked_out`` event.
- Spraying (one PIN tried against many attendant codes, one failure each) is stopped per station:
  ``station_max_failures`` failures within ``station_window_s`` pause every PIN check for
  ``station_lockout_s`` (423 ``station_pin_paused``, event ``station.pin_paused``).
- argon2id takes ~19 MiB per check: at most ``max_parallel_checks`` run at once; a check that
  waits longer than ``check_wait_s`` for a slot is refused with 503 ``pin_checks_busy``.
- PINs are never logged or stored; the pepper (HMAC key) is a per-station secret file
  provisioned by head office (``<key_dir>/pin_pepper.key``, 32 bytes, mode 0600).
"""
from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from argon2.exceptions import VerificationError, VerifyMismatchError, InvalidHashError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent.cards.config import PinSettings
from agent.cards.pin_bundle import PinBundle, hasher, peppered, verify_bundle
from agent.errors import AgentError
from agent.keys import write_secret
from agent.telemetry import TELEMETRY
from agent.store.outbox import append_event
from agent.store.db import Database

log = logging.getLogger(__name__)

MIGRATIONS: list[tuple[str, str]] = [
    ("cards_001_attendant_pins", """
CREATE TABLE cards_pin_bundle (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    version INTEGER NOT NULL,
    stations TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    imported_at TEXT NOT NULL
);
CREATE TABLE cards_attendants (
    attendant_id TEXT PRIMARY KEY,
    pin_hash TEXT NOT NULL
);
CREATE TABLE cards_pin_failures (
    attendant_id TEXT PRIMARY KEY,
    failures INTEGER NOT NULL DEFAULT 0,
    lockouts INTEGER NOT NULL DEFAULT 0,
    locked_until REAL,
    last_failure_at REAL
);
"""),
    ("cards_002_station_pin_window", """
CREATE TABLE cards_pin_station (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    window_start REAL NOT NULL,
    failures INTEGER NOT NULL,
    locked_until REAL
);
"""),
    ("cards_003_pin_bundle_key", """
CREATE TABLE cards_pin_key (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    public_key TEXT NOT NULL,
    set_at TEXT NOT NULL
);
"""),
]
ATTENDANT_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")

PEPPER_FILE = "pin_pepper.key"


def load_pepper(key_dir: Path) -> bytes:
    """The station pepper, installed by head office; never generated here (hashes would not match)."""
    path = Path(key_dir) / PEPPER_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AgentError("pin_pepper_missing",
                         "Falta la clave de PIN de la estación; reinstale las credenciales de la oficina central.",
                         "The station PIN key is missing; reinstall the head office credentials.",
                         status=503) from None
    if len(data) != 32:
        raise AgentError("pin_pepper_corrupt", "La clave de PIN de la estación está dañada.",
                         "The station PIN key file is corrupt.", status=503)
    return data


def install_pepper(key_dir: Path, pepper: bytes) -> Path:
    """Provisioning helper (installer, tests): write the pepper with mode 0600."""
    path = Path(key_dir) / PEPPER_FILE
    write_secret(path, pepper)
    return path


def _invalid() -> AgentError:
    return AgentError("attendant_pin_invalid",
                      "Código de playero o PIN incorrecto.",
                      "Wrong attendant code or PIN.", status=403)


def busy(retry_after_s: int = 1) -> AgentError:
    return AgentError("pin_checks_busy",
                      "Hay demasiadas verificaciones de PIN en curso; intente de nuevo en un momento.",
                      "Too many PIN checks in progress; try again in a moment.",
                      status=503, extra={"retry_after_s": retry_after_s})


def _station_paused(retry_after_s: int) -> AgentError:
    minutes = max(1, round(retry_after_s / 60))
    return AgentError("station_pin_paused",
                      f"Demasiados PIN incorrectos en la estación: verificación pausada por {minutes} min; avise al supervisor.",
                      f"Too many wrong PINs at this station: PIN checks paused for {minutes} min; tell the supervisor.",
                      status=423, extra={"retry_after_s": retry_after_s})


def invalid_attendant_id() -> AgentError:
    return AgentError("attendant_id_invalid",
                      "Código de playero inválido (letras, números, - y _, hasta 32).",
                      "Invalid attendant code (letters, digits, - and _, up to 32).",
                      status=422, field="attendant_id")


def _locked(retry_after_s: int) -> AgentError:
    minutes = max(1, round(retry_after_s / 60))
    return AgentError("attendant_locked_out",
                      f"Demasiados intentos fallidos. Playero bloqueado por {minutes} min; avise al supervisor.",
                      f"Too many failed attempts. Attendant locked for {minutes} min; tell the supervisor.",
                      status=423, extra={"retry_after_s": retry_after_s})


class AttendantPins:
    def __init__(self, db: Database, *, station_id: str, settings: PinSettings,
                 pepper: bytes | None = None, public_key: Ed25519PublicKey | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self.db = db
        self.station_id = station_id
        self.settings = settings
        self._pepper = pepper
        self._public_key = public_key
        self._now = now
        self._hasher = hasher()
        # Same parameters as real hashes, so an unknown id costs exactly one normal verify.
        self._dummy_hash = self._hasher.hash(os.urandom(32))
        self._stripes = [threading.Lock() for _ in range(64)]
        # Bounds argon2's memory (19 MiB per check) whatever the request load.
        self._slots = threading.BoundedSemaphore(settings.max_parallel_checks)

    @property
    def pepper_installed(self) -> bool:
        return self._pepper is not None

    # ---- bundles ---------------------------------------------------------------------------
    def bundle_key(self) -> Ed25519PublicKey | None:
        """The key bundles must be signed with: the one set by ``set_bundle_key`` (recorded in the
        store), else the configured ``cards.pins.bundle_public_key``."""
        row = self.db.read(lambda c: c.execute("SELECT public_key FROM cards_pin_key WHERE one = 1").fetchone())
        if row is not None:
            from agent.cards.pin_bundle import load_public_key

            return load_public_key(row["public_key"])
        return self._public_key

    def set_bundle_key(self, key_text: str) -> None:
        """Change head office's key (rotation): its own explicit command, logged and reported."""
        from agent.cards.pin_bundle import load_public_key

        load_public_key(key_text)  # refuse a malformed key before storing it
        now = datetime.fromtimestamp(self._now(), timezone.utc).isoformat()

        def store(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO cards_pin_key(one, public_key, set_at) VALUES (1, ?, ?) ON CONFLICT(one)"
                         " DO UPDATE SET public_key = excluded.public_key, set_at = excluded.set_at", (key_text, now))
            append_event(conn, "pins.key_changed", {"station_id": self.station_id, "public_key": key_text,
                                                    "set_at": now}, security=True)

        self.db.write(store)
        log.warning("la clave de los paquetes de PIN de la oficina central se cambió con un comando local "
                    "(informado a la oficina central) [pin_key_changed]")

    def import_bundle(self, data: bytes) -> PinBundle:
        public_key = self.bundle_key()
        if public_key is None:
            raise AgentError("pin_bundle_no_key",
                             "No hay clave pública de la oficina central configurada (cards.pins.bundle_public_key).",
                             "No head office public key configured (cards.pins.bundle_public_key).", status=503)
        now_dt = datetime.fromtimestamp(self._now(), timezone.utc)
        bundle = verify_bundle(data, public_key, station_id=self.station_id, now=now_dt)

        def store(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT version FROM cards_pin_bundle WHERE one = 1").fetchone()
            if row is not None and bundle.version <= row["version"]:
                raise AgentError("pin_bundle_stale",
                                 f"El paquete de PIN (versión {bundle.version}) no es más nuevo que el instalado (versión {row['version']}).",
                                 f"PIN bundle version {bundle.version} is not newer than the installed version {row['version']}.",
                                 status=409)
            conn.execute("DELETE FROM cards_attendants")
            conn.executemany("INSERT INTO cards_attendants(attendant_id, pin_hash) VALUES (?, ?)",
                             sorted(bundle.attendants.items()))
            conn.execute(
                "INSERT INTO cards_pin_bundle(one, version, stations, issued_at, expires_at, imported_at)"
                " VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT(one) DO UPDATE SET version = excluded.version,"
                " stations = excluded.stations, issued_at = excluded.issued_at,"
                " expires_at = excluded.expires_at, imported_at = excluded.imported_at",
                (bundle.version, json.dumps(list(bundle.stations)), bundle.issued_at.isoformat(),
                 bundle.expires_at.isoformat(), now_dt.isoformat()))
            append_event(conn, "pins.bundle_imported",
                         {"version": bundle.version, "attendants": len(bundle.attendants)}, security=True)

        self.db.write(store)
        log.info("paquete de PIN versión %d importado (%d playeros) [pin_bundle_imported]", bundle.version, len(bundle.attendants))
        return bundle

    def installed_version(self) -> int | None:
        row = self.db.read(lambda c: c.execute("SELECT version FROM cards_pin_bundle").fetchone())
        return row["version"] if row else None

    # ---- verification ----------------------------------------------------------------------
    def verify(self, attendant_id: str, pin: str) -> None:
        """Return if the PIN is right; raise ``attendant_pin_invalid`` / ``attendant_locked_out``."""
        if not isinstance(attendant_id, str) or not ATTENDANT_ID.fullmatch(attendant_id):
            raise invalid_attendant_id()
        # One attempt at a time per attendant: otherwise parallel guesses all pass the lockout
        # check before the first failure is recorded (argon2 takes ~50 ms), and a lucky one
        # would clear a lockout set meanwhile. Striped locks bound memory for unknown ids.
        with self._stripes[hash(attendant_id) % len(self._stripes)]:
            try:
                self._verify_serialized(attendant_id, pin)
            except AgentError as exc:
                TELEMETRY.count("pin_checks", outcome=exc.code)  # /metrics: failures by reason
                raise
        TELEMETRY.count("pin_checks", outcome="ok")

    def _verify_serialized(self, attendant_id: str, pin: str) -> None:
        now = self._now()

        def read(conn: sqlite3.Connection):  # type: ignore[no-untyped-def]
            bundle = conn.execute("SELECT expires_at FROM cards_pin_bundle WHERE one = 1").fetchone()
            stored = conn.execute("SELECT pin_hash FROM cards_attendants WHERE attendant_id = ?",
                                  (attendant_id,)).fetchone()
            lock = conn.execute("SELECT locked_until FROM cards_pin_failures WHERE attendant_id = ?",
                                (attendant_id,)).fetchone()
            station = conn.execute("SELECT locked_until FROM cards_pin_station WHERE one = 1").fetchone()
            return bundle, stored, lock, station

        bundle, stored, lock, station = self.db.read(read)
        if station is not None and station["locked_until"] is not None and station["locked_until"] > now:
            raise _station_paused(int(station["locked_until"] - now) + 1)
        if lock is not None and lock["locked_until"] is not None and lock["locked_until"] > now:
            raise _locked(int(lock["locked_until"] - now) + 1)
        if bundle is None:
            raise AgentError("pin_bundle_missing",
                             "No hay PIN de playeros instalados en esta estación.",
                             "No attendant PINs are installed on this station.", status=503)
        if datetime.fromisoformat(bundle["expires_at"]).timestamp() <= now:
            raise AgentError("pin_bundle_expired",
                             "Los PIN de playeros están vencidos: se necesita un paquete nuevo de la oficina central.",
                             "Attendant PINs have expired: a new bundle from head office is needed.", status=503)
        pepper = self._pepper if self._pepper is not None else b""
        candidate = stored["pin_hash"] if stored is not None else self._dummy_hash
        ok = self._argon2_check(candidate, peppered(pepper, pin if isinstance(pin, str) else ""))
        ok = ok and stored is not None and self._pepper is not None
        if ok:
            self._reset(attendant_id)
            return
        locked_for = self._record_failure(attendant_id, now)
        if locked_for is not None:
            raise _locked(locked_for)
        raise _invalid()

    def _argon2_check(self, encoded: str, secret: bytes) -> bool:
        if not self._slots.acquire(timeout=self.settings.check_wait_s):
            raise busy()
        try:
            return self._hasher.verify(encoded, secret)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        finally:
            self._slots.release()

    def _reset(self, attendant_id: str) -> None:
        """A correct PIN ends the run of failures; the lockout count (escalation) stays."""
        def reset(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE cards_pin_failures SET failures = 0 WHERE attendant_id = ?", (attendant_id,))

        # Only write when there is something to clear: the common case is a read-only success.
        has_failures = self.db.read(lambda c: c.execute(
            "SELECT 1 FROM cards_pin_failures WHERE attendant_id = ? AND failures > 0", (attendant_id,)).fetchone())
        if has_failures:
            self.db.write(reset)

    def _record_failure(self, attendant_id: str, now: float) -> int | None:
        s = self.settings

        def record(conn: sqlite3.Connection) -> int | None:
            self._count_station_failure(conn, now)
            row = conn.execute("SELECT failures, lockouts, last_failure_at FROM cards_pin_failures"
                               " WHERE attendant_id = ?", (attendant_id,)).fetchone()
            failures = (row["failures"] if row else 0) + 1
            lockouts = row["lockouts"] if row else 0
            if row is not None and (row["last_failure_at"] or 0) < now - s.lockout_forget_s:
                failures, lockouts = 1, 0  # a long quiet spell: start the escalation over
            locked_until: float | None = None
            locked_for: int | None = None
            if failures >= s.max_failures:
                lockouts += 1
                locked_for = min(s.lockout_base_s * 2 ** (lockouts - 1), s.lockout_max_s)
                locked_until = now + locked_for
                failures = 0
                append_event(conn, "attendant.locked_out", {
                    "attendant_id": attendant_id, "station_id": self.station_id,
                    "lockout_number": lockouts, "locked_for_s": locked_for,
                    "locked_until": datetime.fromtimestamp(locked_until, timezone.utc).isoformat(),
                    "failed_attempts": s.max_failures,
                }, security=True)
            conn.execute(
                "INSERT INTO cards_pin_failures(attendant_id, failures, lockouts, locked_until, last_failure_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(attendant_id) DO UPDATE SET failures = excluded.failures,"
                " lockouts = excluded.lockouts, locked_until = excluded.locked_until,"
                " last_failure_at = excluded.last_failure_at",
                (attendant_id, failures, lockouts, locked_until, now))
            return locked_for

        locked_for = self.db.write(record)
        if locked_for is not None:
            TELEMETRY.count("pin_lockouts")
            log.warning("playero %s bloqueado %d s por PIN errados repetidos [attendant_locked_out]", attendant_id, locked_for)
        return locked_for

    def _count_station_failure(self, conn: sqlite3.Connection, now: float) -> None:
        """One more failure in the station's window; too many pause every PIN check."""
        s = self.settings
        row = conn.execute("SELECT window_start, failures FROM cards_pin_station WHERE one = 1").fetchone()
        window_start, failures = (row["window_start"], row["failures"]) if row else (now, 0)
        if window_start <= now - s.station_window_s:
            window_start, failures = now, 0
        failures += 1
        locked_until = None
        if failures >= s.station_max_failures:
            locked_until = now + s.station_lockout_s
            append_event(conn, "station.pin_paused", {
                "station_id": self.station_id, "failed_attempts": failures, "window_s": s.station_window_s,
                "paused_for_s": s.station_lockout_s,
                "paused_until": datetime.fromtimestamp(locked_until, timezone.utc).isoformat(),
            }, security=True)
            log.warning("verificación de PIN pausada %d s: %d fallos en esta estación en %d s [station_pin_paused]",
                        s.station_lockout_s, failures, s.station_window_s)
            window_start, failures = now, 0
        conn.execute(
            "INSERT INTO cards_pin_station(one, window_start, failures, locked_until) VALUES (1, ?, ?, ?)"
            " ON CONFLICT(one) DO UPDATE SET window_start = excluded.window_start, failures = excluded.failures,"
            " locked_until = COALESCE(excluded.locked_until, cards_pin_station.locked_until)",
            (window_start, failures, locked_until))
