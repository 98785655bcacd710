"""The ID-card photos of a customer: which stored image is their document's front and back.

Seed 003 keeps the photos with the enrollment. The images themselves are in the encrypted vault
(``agent.idcard.vault``); this table links them to the customer, so they are found again after
a restart (capture sessions live in memory) and go away with the vault's retention purge.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agent.clock import iso

MIGRATIONS: list[tuple[str, str]] = [
    (
        "idcard_001_customer_photos",
        """
        CREATE TABLE customer_photos (
            customer_id TEXT NOT NULL,
            side        TEXT NOT NULL CHECK (side IN ('front', 'back')),
            image_id    TEXT NOT NULL,
            capture_id  TEXT NOT NULL,              -- part of the image's authenticated data
            stored_at   TEXT NOT NULL,
            PRIMARY KEY (customer_id, side)
        ) WITHOUT ROWID;
        """,
    ),
]


def link(conn: sqlite3.Connection, customer_id: str, capture_id: str, image_ids: dict[str, str],
         at: datetime) -> list[str]:
    """Link a capture's photos to the customer; returns the image ids they replace (to delete)."""
    replaced = []
    for side, image_id in sorted(image_ids.items()):
        old = conn.execute("SELECT image_id FROM customer_photos WHERE customer_id = ? AND side = ?",
                           (customer_id, side)).fetchone()
        if old is not None and old["image_id"] != image_id:
            replaced.append(old["image_id"])
        conn.execute(
            "INSERT INTO customer_photos(customer_id, side, image_id, capture_id, stored_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(customer_id, side) DO UPDATE SET image_id = excluded.image_id,"
            " capture_id = excluded.capture_id, stored_at = excluded.stored_at",
            (customer_id, side, image_id, capture_id, iso(at)))
    return replaced


def photos_of(conn: sqlite3.Connection, customer_id: str) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(
        "SELECT side, image_id, capture_id, stored_at FROM customer_photos WHERE customer_id = ? ORDER BY side",
        (customer_id,))]


def forget_missing(conn: sqlite3.Connection, exists: Callable[[str], bool]) -> int:
    """Drop the links whose image the retention purge deleted; returns how many."""
    gone = [r["image_id"] for r in conn.execute("SELECT image_id FROM customer_photos") if not exists(r["image_id"])]
    conn.executemany("DELETE FROM customer_photos WHERE image_id = ?", [(i,) for i in gone])
    return len(gone)
