"""Numbered schema migrations, each applied once in the same transaction as its record.

Each feature module declares ``MIGRATIONS: list[tuple[str, str]]`` with globally unique
names prefixed by the feature; the station (agent/station.py) lists the features in the order
they apply and hands the whole list to ``Database``. The store names no feature.

Each applied migration records the version of the build that applied it (``writer_version``).
A database with a migration this build does not know was written by a newer build: opening it
is refused (``UnknownMigrations``, naming that version) instead of running old code on a schema
it does not understand, which after a rollback duplicated customers silently. Before any
migration runs on an existing database, ``before_migrating`` (a consistent backup) is called.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from agent.errors import AgentError

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


class UnknownMigrations(AgentError):
    """The database was migrated by a build newer than this one."""

    def __init__(self, path: Path, unknown: dict[str, str | None], this_version: str | None) -> None:
        writers = sorted({w or "desconocida" for w in unknown.values()})
        names = ", ".join(unknown)
        newest = writers[-1]
        super().__init__(
            "database_newer_than_build",
            f"la base de datos {path} tiene migraciones que esta versión ({this_version or 'sin versión'}) no "
            f"conoce ({names}), aplicadas por la versión {' y '.join(writers)}. No se abre, para no dañar los "
            f"datos. Vuelva a la versión {newest} (sudo loyalty-station rollback --to {newest}) o restaure una "
            f"copia anterior a esas migraciones (loyalty-agent restore, o sudo loyalty-station rollback "
            f"--restore-data).",
            f"the database {path} has migrations this build ({this_version or 'unversioned'}) does not know "
            f"({names}), applied by version {' and '.join(writers)}. It is not opened, so the data are not "
            f"damaged. Go back to version {newest} or restore a copy from before those migrations.",
            status=500)


def recorded_migrations(conn: sqlite3.Connection) -> dict[str, str | None]:
    """Applied migration names (in order) and the version that applied each (None if unrecorded)."""
    columns = {r[1] for r in conn.execute("PRAGMA table_info(schema_migrations)")}
    if not columns:
        return {}
    if "writer_version" not in columns:
        return {r[0]: None for r in conn.execute("SELECT name FROM schema_migrations ORDER BY rowid")}
    return {r[0]: r[1] for r in conn.execute("SELECT name, writer_version FROM schema_migrations ORDER BY rowid")}


def check_known(path: Path, recorded: dict[str, str | None], migrations: Iterable[tuple[str, str]],
                writer_version: str | None) -> None:
    """Raise ``UnknownMigrations`` if ``recorded`` holds a migration this build does not have."""
    known = {name for name, _ in migrations}
    unknown = {name: writer for name, writer in recorded.items() if name not in known}
    if unknown:
        raise UnknownMigrations(path, unknown, writer_version)


def apply_migrations(db: "Database", migrations: Iterable[tuple[str, str]], *, writer_version: str | None = None,
                     before_migrating: Callable[[list[str]], None] | None = None) -> list[str]:
    """Apply the migrations not yet recorded; return the names applied now.

    With ``writer_version`` (the station opening its store with every migration it knows),
    refuses a database with migrations not in ``migrations``. Calls ``before_migrating(pending)``
    once before the first migration on a database that already has some.
    """
    migrations = list(migrations)

    def ensure_table(conn: sqlite3.Connection) -> dict[str, str | None]:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),"
            " writer_version TEXT)"
        )
        recorded = recorded_migrations(conn)
        if writer_version is not None:  # the station's full list (a feature's own list is partial)
            check_known(db.path, recorded, migrations, writer_version)  # before anything is written
        if "writer_version" not in {r[1] for r in conn.execute("PRAGMA table_info(schema_migrations)")}:
            conn.execute("ALTER TABLE schema_migrations ADD COLUMN writer_version TEXT")
        return recorded

    done = db.write(ensure_table)
    pending = [(name, sql) for name, sql in migrations if name not in done]
    if pending and done and before_migrating is not None:
        before_migrating([name for name, _ in pending])
    applied: list[str] = []
    for name, sql in pending:

        def run(conn: sqlite3.Connection, name: str = name, sql: str = sql) -> None:
            # executescript would COMMIT our transaction; run statement by statement instead.
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations(name, writer_version) VALUES (?, ?)", (name, writer_version))

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
