"""Fingerprint templates at rest: AES-GCM encrypted, bound to their record, never images.

The associated data binds customer id, finger, template format and sensor model, so a
ciphertext copied into another customer's (or another finger's) row fails authentication
instead of letting someone else's finger verify. Templates never leave this module in logs or
events: outbox events carry only the customer id and the finger.
"""
from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Literal, get_args

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agent.biometric.errors import TemplateNotFound, TemplateSizeError, TemplateUnreadable
from agent.clock import now_iso
from agent.drivers.r30x.protocol import TEMPLATE_SIZE
from agent.errors import AgentError
from agent.store.outbox import append_event
from agent.store.db import Database

KEY_NAME = "biometric-templates"  # file name under settings.storage.key_dir

Finger = Literal[
    "right_thumb", "right_index", "right_middle", "right_ring", "right_little",
    "left_thumb", "left_index", "left_middle", "left_ring", "left_little",
]
FINGERS: tuple[str, ...] = get_args(Finger)

MIGRATIONS: list[tuple[str, str]] = [
    (
        "biometric_001_templates",
        """
        CREATE TABLE biometric_templates (
            customer_id     TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            finger          TEXT NOT NULL,
            template_format TEXT NOT NULL,
            sensor_model    TEXT NOT NULL,
            nonce           BLOB NOT NULL,      -- 12 random bytes per encryption
            ciphertext      BLOB NOT NULL,      -- AES-256-GCM(template) || tag
            created_at      TEXT NOT NULL,
            PRIMARY KEY (customer_id, finger)
        );
        """,
    ),
]


def associated_data(customer_id: str, finger: str, template_format: str, sensor_model: str) -> bytes:
    """Canonical bytes the ciphertext is bound to.

    >>> associated_data("c1", "right_index", "r30x-char-v1", "R307")
    b'{"customer_id":"c1","finger":"right_index","format":"r30x-char-v1","sensor_model":"R307","v":1}'
    """
    record = {"v": 1, "customer_id": customer_id, "finger": finger, "format": template_format, "sensor_model": sensor_model}
    return json.dumps(record, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    customer_id: str
    finger: str
    template_format: str
    sensor_model: str
    template: bytes

    def __repr__(self) -> str:  # never print template bytes by accident
        return f"StoredTemplate(customer_id={self.customer_id!r}, finger={self.finger!r}, format={self.template_format!r})"


def check_finger(finger: str) -> None:
    if finger not in FINGERS:
        raise AgentError("invalid_finger", "Dedo no válido", "Invalid finger", field="finger",
                         extra={"allowed": list(FINGERS)})


class TemplateStore:
    def __init__(self, db: Database, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("template key must be 32 bytes (AES-256)")
        self._db = db
        self._aead = AESGCM(key)

    def save_tx(self, conn: sqlite3.Connection, customer_id: str, finger: str, template: bytes,
                template_format: str, sensor_model: str) -> None:
        """Encrypt and upsert inside the caller's write transaction, with its outbox event."""
        check_finger(finger)
        if len(template) != TEMPLATE_SIZE:
            raise TemplateSizeError(len(template), TEMPLATE_SIZE)
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, template, associated_data(customer_id, finger, template_format, sensor_model))
        conn.execute(
            "INSERT INTO biometric_templates(customer_id, finger, template_format, sensor_model, nonce, ciphertext, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(customer_id, finger) DO UPDATE SET template_format=excluded.template_format,"
            " sensor_model=excluded.sensor_model, nonce=excluded.nonce, ciphertext=excluded.ciphertext,"
            " created_at=excluded.created_at",
            (customer_id, finger, template_format, sensor_model, nonce, sealed, now_iso()),
        )
        append_event(conn, "biometric.enrolled", {"customer_id": customer_id, "finger": finger})

    def save(self, customer_id: str, finger: str, template: bytes, template_format: str, sensor_model: str) -> None:
        self._db.write(lambda c: self.save_tx(c, customer_id, finger, template, template_format, sensor_model))

    def load(self, customer_id: str, finger: str) -> StoredTemplate:
        check_finger(finger)
        row = self._db.read(lambda c: c.execute(
            "SELECT template_format, sensor_model, nonce, ciphertext FROM biometric_templates"
            " WHERE customer_id = ? AND finger = ?", (customer_id, finger)).fetchone())
        if row is None:
            raise TemplateNotFound()
        aad = associated_data(customer_id, finger, row["template_format"], row["sensor_model"])
        try:
            template = self._aead.decrypt(bytes(row["nonce"]), bytes(row["ciphertext"]), aad)
        except (InvalidTag, ValueError) as exc:  # ValueError: a nonce of the wrong length
            raise TemplateUnreadable() from exc
        if len(template) != TEMPLATE_SIZE:
            raise TemplateUnreadable()
        return StoredTemplate(customer_id, finger, row["template_format"], row["sensor_model"], template)

    def enrolled_fingers(self, customer_id: str) -> list[str]:
        rows = self._db.read(lambda c: c.execute(
            "SELECT finger FROM biometric_templates WHERE customer_id = ? ORDER BY finger", (customer_id,)).fetchall())
        return [r["finger"] for r in rows]

    def delete(self, customer_id: str, finger: str | None = None) -> int:
        """Remove one finger or (``finger=None``) all of a customer's templates; returns rows removed."""
        if finger is not None:
            check_finger(finger)
        return self._db.write(lambda conn: self.delete_tx(conn, customer_id, finger))

    def delete_tx(self, conn: sqlite3.Connection, customer_id: str, finger: str | None = None) -> int:
        if finger is None:
            removed = conn.execute("DELETE FROM biometric_templates WHERE customer_id = ?", (customer_id,)).rowcount
        else:
            removed = conn.execute("DELETE FROM biometric_templates WHERE customer_id = ? AND finger = ?",
                                   (customer_id, finger)).rowcount
        if removed:
            # security: deleting biometric data (consent withdrawn) never waits for a full sync queue.
            append_event(conn, "biometric.deleted", {"customer_id": customer_id, "finger": finger}, security=True)
        return removed
