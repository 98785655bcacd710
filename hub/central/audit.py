"""Audit trail: who did what, in the same transaction as the change itself."""
from __future__ import annotations

import getpass
import json
from typing import Any

import psycopg


def default_actor(configured: str | None = None) -> str:
    if configured:
        return configured
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli:unknown"


def record(conn: psycopg.Connection, actor: str, action: str, detail: dict[str, Any] | None = None) -> None:
    """Never put a PIN, a pepper or a customer's personal data in ``detail``."""
    conn.execute("INSERT INTO audit_log(actor, action, detail) VALUES (%s, %s, %s)",
                 (actor, action, json.dumps(detail or {}, ensure_ascii=False, default=str)))
