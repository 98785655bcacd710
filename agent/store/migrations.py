"""Numbered schema migrations, each applied once in the same transaction as its record.

Each feature module declares ``MIGRATIONS: list[tuple[str, str]]`` with globally unique
names prefixed by the feature; the station (agent/station.py) lists the features in the order
they apply and hands the whole list to ``Database``. The store names no feature.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.store.db import Database


def check_unique(migrations: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The migrations as a list, or a RuntimeError naming any name used twice (each name is
    recorded once, so a duplicate would silently never run)."""
    checked = list(migrations)
    names = [m[0] for m in checked]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise RuntimeError(f"duplicate migration names: {sorted(dupes)}")
    return checked


def apply_migrations(db: "Database", migrations: Iterable[tuple[str, str]]) -> list[str]:
    """Apply the migrations not yet recorded; return the names applied now."""

    def ensure_table(conn: sqlite3.Connection) -> set[str]:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"
        )
        return {r[0] for r in conn.execute("SELECT name FROM schema_migrations")}

    done = db.write(ensure_table)
    applied: list[str] = []
    for name, sql in migrations:
        if name in done:
            continue

        def run(conn: sqlite3.Connection, name: str = name, sql: str = sql) -> None:
            # executescript would COMMIT our transaction; run statement by statement instead.
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations(name) VALUES (?)", (name,))

        db.write(run)
        applied.append(name)
    return applied


def _split_sql(sql: str) -> list[str]:
    """Split a migration script into statements (triggers keep their inner semicolons).

    >>> _split_sql("CREATE TABLE a(x); CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;")
    ['CREATE TABLE a(x);', 'CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; END;']
    """
    statements: list[str] = []
    current = ""
    for piece in sql.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n\t;"):
                statements.append(current.strip())
            current = ""
    if current.strip(" \n\t;"):
        raise ValueError("incomplete SQL statement at end of migration")
    return statements
