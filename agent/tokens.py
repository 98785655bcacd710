"""Bearer tokens for POS clients. Only a SHA-256 of each token is stored.

Tokens are 256 random bits, so a fast hash is enough (there is nothing to brute-force);
the lookup is by hash, so no comparison leaks timing about a stored token.
"""
from __future__ import annotations

import hashlib
import os
import re
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from agent.clock import now_iso
from agent.errors import AgentError
from agent.ids import new_id
from agent.keys import write_secret
from agent.store.db import Database

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
PREFIX = "lat_"
# The token the running agent writes at start-up for local tools (``loyalty-agent sync``):
# the client's name and the file, under the key folder, readable only by the service user.
LOCAL_CLIENT = "local-cli"
TOKEN_FILE = "local-cli.token"


@dataclass(frozen=True)
class Client:
    id: str
    name: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class TokenStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, name: str) -> str:
        """Create a token for client ``name`` and return it (the only time it is visible)."""
        if not _NAME.match(name):
            raise AgentError("invalid_client_name", "Nombre de cliente no válido (letras, números, - _ .).",
                             "Invalid client name (letters, digits, - _ .).", field="name")
        token = PREFIX + secrets.token_urlsafe(32)

        def run(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM api_tokens WHERE name=? AND revoked_at IS NULL", (name,)).fetchone():
                raise AgentError("client_exists", f"Ya existe un token activo para {name}; revóquelo primero.",
                                 f"An active token exists for {name}; revoke it first.", status=409, field="name")
            conn.execute("DELETE FROM api_tokens WHERE name=? AND revoked_at IS NOT NULL", (name,))
            conn.execute("INSERT INTO api_tokens(id, name, token_hash, created_at) VALUES (?,?,?,?)",
                         (new_id(), name, hash_token(token), now_iso()))

        self._db.write(run)
        return token

    def issue_local_token(self, path: Path, name: str = "local-cli") -> None:
        """A fresh token for local tools (``loyalty-agent sync``), written 0600 next to the keys.

        Replaced at every start, so a copied file stops working after a restart; on a full disk
        (nothing can be written) a still-valid token is kept, so the agent starts and serves reads."""
        from agent.store.db import StorageFull

        token = PREFIX + secrets.token_urlsafe(32)
        tmp = path.with_suffix(".tmp")
        try:
            write_secret(tmp, token.encode())
            self._replace(name, token)  # one transaction: never a moment without a local token
        except (StorageFull, OSError):
            tmp.unlink(missing_ok=True)
            current = path.read_text().strip() if path.is_file() else ""
            if current and self.authenticate(current) is not None:
                return
            raise
        os.replace(tmp, path)

    def _replace(self, name: str, token: str) -> None:
        def run(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM api_tokens WHERE name=?", (name,))
            conn.execute("INSERT INTO api_tokens(id, name, token_hash, created_at) VALUES (?,?,?,?)",
                         (new_id(), name, hash_token(token), now_iso()))

        self._db.write(run)

    def revoke(self, name: str) -> bool:
        return self._db.write(lambda c: c.execute(
            "UPDATE api_tokens SET revoked_at=? WHERE name=? AND revoked_at IS NULL", (now_iso(), name)).rowcount > 0)

    def list(self) -> list[dict[str, str | None]]:
        return self._db.read(lambda c: [dict(r) for r in c.execute(
            "SELECT name, created_at, revoked_at FROM api_tokens ORDER BY name")])

    def is_active(self, client_id: str) -> bool:
        """Whether the token behind ``client_id`` is still valid (open streams check it again)."""
        return self._db.read(lambda c: c.execute(
            "SELECT 1 FROM api_tokens WHERE id=? AND revoked_at IS NULL", (client_id,)).fetchone()) is not None

    def authenticate(self, token: str) -> Client | None:
        if not token.startswith(PREFIX) or len(token) > 128:
            return None
        row = self._db.read(lambda c: c.execute(
            "SELECT id, name FROM api_tokens WHERE token_hash=? AND revoked_at IS NULL", (hash_token(token),)).fetchone())
        return Client(row["id"], row["name"]) if row else None
