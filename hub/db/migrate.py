"""Apply the hub's migrations in order, each in its own transaction, exactly once.

Several workers may start at once against a new database: an advisory lock serializes them,
so the second one finds the migrations applied and does nothing.
"""
from __future__ import annotations

import logging

import psycopg

from hub.db import (schema_001, schema_002, schema_003, schema_004, schema_005, schema_006, schema_007, schema_008,
                    schema_009, schema_010)

log = logging.getLogger(__name__)
MIGRATIONS: tuple[tuple[str, str], ...] = (("hub_001_core", schema_001.SQL), ("hub_002_central", schema_002.SQL),
                                            ("hub_003_web", schema_003.SQL),
                                            ("hub_004_rewards", schema_004.SQL), ("hub_005_behind", schema_005.SQL),
                                            ("hub_006_event_fields", schema_006.SQL),
                                            ("hub_007_ingest_references", schema_007.SQL),
                                            ("hub_008_enrollment_downlink", schema_008.SQL),
                                            ("hub_009_movement_accounts_per_statement", schema_009.SQL),
                                            ("hub_010_sale_is_its_movement", schema_010.SQL))
_LOCK_KEY = 0x6C6F79616C7479  # "loyalty": any constant shared by every hub process


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply what is missing; return the names applied now."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute("CREATE TABLE IF NOT EXISTS hub_migrations (name text PRIMARY KEY,"
                     " applied_at timestamptz NOT NULL DEFAULT now())")
        done = {row[0] for row in conn.execute("SELECT name FROM hub_migrations")}
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            conn.execute(sql)
            conn.execute("INSERT INTO hub_migrations(name) VALUES (%s)", (name,))
            applied_now.append(name)
            log.info("migración %s aplicada [migration_applied]", name)
    return applied_now


def pending(conn: psycopg.Connection) -> list[str]:
    exists = conn.execute("SELECT to_regclass('hub_migrations')").fetchone()[0]
    done = {row[0] for row in conn.execute("SELECT name FROM hub_migrations")} if exists else set()
    return [name for name, _ in MIGRATIONS if name not in done]
