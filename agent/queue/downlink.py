"""Configuration from head office (downlink): validated, versioned, applied atomically.

Each kind registers a handler. A message is parsed and validated first (pydantic); then its
version is compared with the last applied one: the same version with the same bytes is a
harmless redelivery (retained messages come back on every reconnect) and is ignored; a lower
or equal version with other bytes is stale and rejected. Anything rejected is reported on the
station's ``config/errors`` topic and logged, and never stops the agent.

Kinds registered as ``signed`` arrive wrapped and signed by head office (``signed_config``):
the wrapper is verified and removed before the kind's parser sees anything.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.clock import now_iso
from agent.errors import AgentError
from agent.queue.signed_config import ConfigVerifier
from agent.store.db import Database

log = logging.getLogger(__name__)
MAX_PAYLOAD = 16 * 1024 * 1024
# Optional downlink fields this agent accepts, announced in ``availability`` (``features``): the
# models refuse fields they do not know, so head office sends such a field only to agents that
# list it. ``enrollment_requests``: the directory delta's enrollment request fields.
DOWNLINK_FEATURES = ("enrollment_requests",)


class Envelope(BaseModel):
    """Generic wrapper: ``{"version": 7, "issued_at": "...", "data": {...}}``."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)
    issued_at: str | None = None
    data: Any


@dataclass(frozen=True)
class DownlinkHandler:
    kind: str
    # bytes -> (version, parsed document); raises ValueError / ValidationError / AgentError.
    parse: Callable[[bytes], tuple[int, Any]]
    apply: Callable[[Any], None]
    # False only for kinds that carry their own signature (the PIN bundle).
    signed: bool = True


@dataclass(frozen=True)
class DownlinkResult:
    kind: str
    status: str  # applied | duplicate | rejected
    version: int | None = None
    code: str | None = None
    message: str | None = None

    def report(self) -> dict[str, Any]:
        return {"kind": self.kind, "status": self.status, "version": self.version, "code": self.code,
                "message": self.message, "at": now_iso()}


def enveloped(model: type[BaseModel]) -> Callable[[bytes], tuple[int, Any]]:
    """Parser for kinds sent in the generic envelope, validating ``data`` with ``model``."""

    def parse(raw: bytes) -> tuple[int, Any]:
        envelope = Envelope.model_validate_json(raw)
        return envelope.version, model.model_validate(envelope.data)

    return parse


class Downlink:
    def __init__(self, db: Database, verifier: ConfigVerifier | None = None) -> None:
        self._db = db
        # Without a verifier nothing unsigned is trusted: every signed kind is refused.
        self._verifier = verifier or ConfigVerifier(None, required=True)
        self._handlers: dict[str, DownlinkHandler] = {}

    def register(self, handler: DownlinkHandler) -> None:
        self._handlers[handler.kind] = handler

    @property
    def kinds(self) -> list[str]:
        return sorted(self._handlers)

    def handle(self, kind: str, raw: bytes) -> DownlinkResult:
        try:
            return self._handle(kind, raw)
        except Exception as exc:  # noqa: BLE001 - a bad message must never take the agent down
            log.exception("configuración %s: falla inesperada [config_failed]", kind)
            return DownlinkResult(kind, "rejected", code="internal_error", message=type(exc).__name__)

    def _handle(self, kind: str, raw: bytes) -> DownlinkResult:
        handler = self._handlers.get(kind)
        if handler is None:
            return self._reject(kind, None, "unknown_kind", f"no handler for configuration kind {kind!r}")
        if not raw:
            # An empty retained message is how a publisher clears a topic: nothing to apply.
            return DownlinkResult(kind, "duplicate")
        if len(raw) > MAX_PAYLOAD:
            return self._reject(kind, None, "too_large", f"payload of {len(raw)} bytes")
        digest = hashlib.sha256(raw).hexdigest()
        try:
            version, document = handler.parse(self._verifier.unwrap(kind, raw) if handler.signed else raw)
        except ValidationError as exc:
            first = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(p) for p in first.get("loc", ()))
            return self._reject(kind, None, "invalid", f"{exc.error_count()} error(s); first at {where}: {first.get('msg')}")
        except (ValueError, KeyError, TypeError) as exc:
            return self._reject(kind, None, "invalid", str(exc)[:300])
        except AgentError as exc:
            return self._reject(kind, None, exc.code, exc.en)
        current = self._db.read(lambda c: c.execute(
            "SELECT version, digest FROM downlink_state WHERE name=?", (kind,)).fetchone())
        if current is not None:
            if current["digest"] == digest:
                return DownlinkResult(kind, "duplicate", version)
            if version <= current["version"]:
                return self._reject(kind, version, "stale",
                                    f"version {version} is not newer than applied version {current['version']}")
        try:
            handler.apply(document)
        except AgentError as exc:
            return self._reject(kind, version, exc.code, exc.en)
        self._db.write(lambda c: c.execute(
            "INSERT INTO downlink_state(name, version, digest, applied_at) VALUES (?,?,?,?)"
            " ON CONFLICT(name) DO UPDATE SET version=excluded.version, digest=excluded.digest,"
            " applied_at=excluded.applied_at", (kind, version, digest, now_iso())))
        log.info("configuración %s versión %s aplicada [config_applied]", kind, version)
        return DownlinkResult(kind, "applied", version)

    def _reject(self, kind: str, version: int | None, code: str, message: str) -> DownlinkResult:
        log.warning("configuración %s rechazada (%s): %s [config_rejected]", kind, code, message)
        return DownlinkResult(kind, "rejected", version, code, message)

    def state(self) -> dict[str, dict[str, Any]]:
        rows = self._db.read(lambda c: c.execute("SELECT * FROM downlink_state").fetchall())
        return {r["name"]: {"version": r["version"], "applied_at": r["applied_at"]} for r in rows}
