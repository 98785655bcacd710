"""Back-office users (argon2id passwords, roles), server-side sessions with a CSRF token, and
attempt counters in PostgreSQL (shared by every web process) for rate limiting."""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.central import audit
from hub.central.errors import CentralError

ROLES = ("admin", "manager", "readonly")
SESSION_HOURS = 8
_USERNAME = re.compile(r"^[a-z0-9_.-]{3,40}$")
_hasher = PasswordHasher()  # argon2id with the library's defaults (interactive logins)
_DUMMY = _hasher.hash(secrets.token_bytes(16))  # unknown users cost one verify too


@dataclass(frozen=True)
class User:
    username: str
    role: str
    station_id: str | None
    csrf: str


def add_user(conn: psycopg.Connection, actor: str, username: str, password: str, role: str,
             station_id: str | None) -> None:
    if not _USERNAME.match(username):
        raise CentralError("bad_username", "usuario inválido: 3 a 40 caracteres a-z 0-9 _ . -",
                           "invalid user name: 3-40 characters a-z 0-9 _ . -")
    if role not in ROLES:
        raise CentralError("bad_role", f"rol inválido: use {', '.join(ROLES)}", f"invalid role: use {', '.join(ROLES)}")
    if (role == "manager") != (station_id is not None):
        raise CentralError("bad_role_station", "un encargado (manager) necesita --station; los otros roles no la llevan",
                           "a manager needs --station; other roles take none")
    if len(password) < 12:
        raise CentralError("weak_password", "la contraseña debe tener al menos 12 caracteres",
                           "the password must have at least 12 characters")
    with conn.transaction():
        conn.execute("INSERT INTO web_users(username, password_hash, role, station_id) VALUES (%s, %s, %s, %s)"
                     " ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role,"
                     " station_id = excluded.station_id, disabled = false",
                     (username, _hasher.hash(password), role, station_id))
        audit.record(conn, actor, "web_user.saved", {"user": username, "role": role, "station": station_id})


def check_password(conn: psycopg.Connection, username: str, password: str) -> bool:
    row = conn.execute("SELECT password_hash FROM web_users WHERE username = %s AND NOT disabled",
                       (username,)).fetchone()
    try:
        _hasher.verify(row[0] if row else _DUMMY, password)
    except (VerificationError, InvalidHashError):
        return False
    return row is not None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(conn: psycopg.Connection, username: str) -> str:
    token = secrets.token_urlsafe(32)
    conn.execute("DELETE FROM web_sessions WHERE expires_at < now()")
    conn.execute("INSERT INTO web_sessions(token_hash, username, csrf, expires_at)"
                 f" VALUES (%s, %s, %s, now() + interval '{SESSION_HOURS} hours')",
                 (_digest(token), username, secrets.token_urlsafe(24)))
    return token


def session_user(conn: psycopg.Connection, token: str | None) -> User | None:
    if not token:
        return None
    row = conn.execute("SELECT u.username, u.role, u.station_id, s.csrf FROM web_sessions s JOIN web_users u"
                       " USING (username) WHERE s.token_hash = %s AND s.expires_at > now() AND NOT u.disabled",
                       (_digest(token),)).fetchone()
    return User(*row) if row else None


def close_session(conn: psycopg.Connection, token: str | None) -> None:
    if token:
        conn.execute("DELETE FROM web_sessions WHERE token_hash = %s", (_digest(token),))


def too_many(conn: psycopg.Connection, bucket: str, limit: int, minutes: int) -> bool:
    """Count this attempt and say whether the bucket is over ``limit`` in the last ``minutes``."""
    conn.execute("INSERT INTO web_attempts(bucket) VALUES (%s)", (bucket,))
    count = conn.execute("SELECT count(*) FROM web_attempts WHERE bucket = %s"
                         f" AND at > now() - interval '{int(minutes)} minutes'", (bucket,)).fetchone()[0]
    return int(count) > limit


def bucket(kind: str, value: str) -> str:
    # Hashed: the counters table never holds card numbers or addresses in clear.
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"
