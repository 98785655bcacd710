"""Idempotency-Key handling (Stripe convention, IETF draft semantics).

The key's record is written in the same transaction as the effect, so a crash can never
leave an effect without its record (which would double-book on retry) or a record
without its effect. A retry with the same key and body replays the first response; the
same key with another body is a 422.
"""
from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Callable
from typing import Any

from fastapi import Header

from agent.clock import now_iso
from agent.errors import AgentError
from agent.store.db import Database

_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

# The request header as a route parameter (so /openapi.json lists it). Checked by check_key,
# not by a pattern here, so a bad key stays a 400 invalid_idempotency_key rather than a 422.
IDEMPOTENCY_KEY: Any = Header(
    None, alias="Idempotency-Key", examples=["3f0c1b9e-6d1a-4c55-9a57-2b1f0e8d4c21"],
    description="1 to 255 visible ASCII characters, unique per operation (e.g. a UUID); reuse it when "
                "retrying. The same key and body replay the first answer; the same key with another body "
                "is a 422 `idempotency_key_reused`. Scoped per token.")

# Response headers of the routes that take the key, for their ``responses=`` declaration.
REPLAYED_HEADER: dict[str, Any] = {"Idempotent-Replayed": {
    "description": "`true` when this is the stored answer to an earlier request with the same "
                   "`Idempotency-Key` (nothing was done again); absent otherwise",
    "schema": {"type": "string", "enum": ["true"]}}}


def created(description: str, headers: dict[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """The ``201`` entry of an idempotent route: its description and response headers."""
    return {201: {"description": description, "headers": {**(headers or {}), **REPLAYED_HEADER}}}


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def check_key(key: str) -> None:
    if not _KEY.match(key):
        raise AgentError("invalid_idempotency_key",
                         "Idempotency-Key no válida: 1 a 255 caracteres ASCII visibles.",
                         "Invalid Idempotency-Key: 1 to 255 visible ASCII characters.", status=400,
                         field="Idempotency-Key")


def run_idempotent(
    db: Database,
    client: str,
    key: str | None,
    print_: str,
    op: Callable[[sqlite3.Connection], tuple[int, Any]],
) -> tuple[int, Any, bool]:
    """Run ``op`` once per (client, key); return (status, body, replayed)."""
    if key is None:
        status, body = db.write(op)
        return status, body, False
    check_key(key)

    def run(conn: sqlite3.Connection) -> tuple[int, Any, bool]:
        row = conn.execute("SELECT fingerprint, status, body FROM idempotency_keys WHERE client=? AND key=?",
                           (client, key)).fetchone()
        if row is not None:
            if row["fingerprint"] != print_:
                raise AgentError(
                    "idempotency_key_reused",
                    "Esa Idempotency-Key ya se usó con otra solicitud distinta; use una clave nueva.",
                    "That Idempotency-Key was already used with a different request; use a new key.",
                    status=422, field="Idempotency-Key")
            return row["status"], json.loads(row["body"]), True
        status, body = op(conn)
        conn.execute("INSERT INTO idempotency_keys(client, key, fingerprint, status, body, created_at)"
                     " VALUES (?,?,?,?,?,?)", (client, key, print_, status, json.dumps(body, default=str), now_iso()))
        return status, body, False

    return db.write(run)

