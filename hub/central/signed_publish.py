"""Turn the authored configuration into signed documents and publish them to every station.

``earning_rules``: the compiled program in the station's envelope, numbered by this hub's own
counter. ``directory``: the catalog (tiers, messages, rewards) as a directory delta numbered by
the chain-wide delta counter the account deltas use (``directory_state``), so the station's
"newer seq wins" holds across both. Every document is signed (``agent.queue.signed_config``)
and kept in ``config_published`` exactly as sent.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.loyalty.directory import DirectoryDelta
from agent.queue.downlink import Envelope
from agent.queue.signed_config import sign_config
from hub.central import audit, authoring
from hub.central.errors import CentralError


@dataclass(frozen=True)
class Signed:
    kind: str
    version: int
    body: bytes


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(conn: psycopg.Connection, actor: str, kind: str, version: int, body: bytes) -> Signed:
    conn.execute("INSERT INTO config_published(kind, version, body, published_by) VALUES (%s, %s, %s, %s)",
                 (kind, version, body.decode(), actor))
    audit.record(conn, actor, f"config.{kind}.signed", {"version": version})
    return Signed(kind, version, body)


def sign_rules(conn: psycopg.Connection, key: Ed25519PrivateKey, actor: str) -> Signed:
    authored = authoring.load(conn, "program")
    if authored is None:
        raise CentralError("nothing_authored", "no hay programa de puntos cargado (loyalty-hub config set program)",
                           "no earning program authored yet (loyalty-hub config set program)")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('config:earning_rules'))")
        version = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM config_published WHERE kind = 'earning_rules'"
                               ).fetchone()[0]
        program = authoring.AuthoredProgram.model_validate(authored).compile(version)
        envelope = {"version": version, "issued_at": _now(), "data": program.model_dump(mode="json", exclude_none=True)}
        Envelope.model_validate(envelope)
        return _record(conn, actor, "earning_rules", version, sign_config(key, "earning_rules", envelope))


def catalog_rows(conn: psycopg.Connection) -> dict[str, list[Any]]:
    """The current tiers, messages and rewards as directory rows (empty lists when not authored)."""
    return {kind: authoring.load(conn, kind) or [] for kind in ("tiers", "messages", "rewards")}


def sign_catalog(conn: psycopg.Connection, key: Ed25519PrivateKey, actor: str) -> Signed:
    rows = catalog_rows(conn)
    with conn.transaction():
        previous = conn.execute("SELECT body FROM config_published WHERE kind = 'directory'"
                                " ORDER BY version DESC LIMIT 1").fetchone()
        current = {m["message_id"] for m in rows["messages"]}
        removed = sorted(_published_messages(previous[0]) - current) if previous else []
        seq = conn.execute("UPDATE directory_state SET delta_seq = delta_seq + 1 RETURNING delta_seq").fetchone()[0]
        delta = {"seq": seq, "as_of": _now(), "tiers": rows["tiers"], "accounts": [], "cards": [],
                 "messages": rows["messages"], "removed_messages": removed, "rewards": rows["rewards"]}
        DirectoryDelta.model_validate(delta)
        return _record(conn, actor, "directory", seq, sign_config(key, "directory", delta))


def _published_messages(body: str) -> set[str]:
    return {m["message_id"] for m in json.loads(body)["payload"].get("messages", [])}
