"""Core tables: customers, their change history, API tokens, idempotency records, outbox."""
from __future__ import annotations

MIGRATIONS: list[tuple[str, str]] = [
    (
        "core_001_customers",
        """
        CREATE TABLE customers (
            id              TEXT PRIMARY KEY,
            doc_country     TEXT NOT NULL,
            doc_type        TEXT NOT NULL,
            doc_number      TEXT NOT NULL,          -- compact form
            kind            TEXT NOT NULL,
            loyalty_id      TEXT,
            search_name     TEXT NOT NULL DEFAULT '',
            data            TEXT NOT NULL,          -- the customer document (JSON)
            version         INTEGER NOT NULL DEFAULT 1,
            created_at      TEXT NOT NULL,
            updated_at      TEXT NOT NULL
        );
        CREATE UNIQUE INDEX customers_document ON customers(doc_country, doc_type, doc_number);
        CREATE UNIQUE INDEX customers_loyalty_id ON customers(loyalty_id) WHERE loyalty_id IS NOT NULL;
        CREATE VIRTUAL TABLE customers_fts USING fts5(
            search_name, content='customers', content_rowid='rowid',
            tokenize="unicode61 remove_diacritics 2"
        );
        CREATE TRIGGER customers_fts_ai AFTER INSERT ON customers BEGIN
            INSERT INTO customers_fts(rowid, search_name) VALUES (new.rowid, new.search_name);
        END;
        CREATE TRIGGER customers_fts_ad AFTER DELETE ON customers BEGIN
            INSERT INTO customers_fts(customers_fts, rowid, search_name) VALUES ('delete', old.rowid, old.search_name);
        END;
        CREATE TRIGGER customers_fts_au AFTER UPDATE OF search_name ON customers BEGIN
            INSERT INTO customers_fts(customers_fts, rowid, search_name) VALUES ('delete', old.rowid, old.search_name);
            INSERT INTO customers_fts(rowid, search_name) VALUES (new.rowid, new.search_name);
        END;
        CREATE TABLE customer_changes (
            id          INTEGER PRIMARY KEY,
            customer_id TEXT NOT NULL REFERENCES customers(id) ON DELETE CASCADE,
            field       TEXT NOT NULL,
            old         TEXT,                       -- JSON
            new         TEXT,                       -- JSON
            at          TEXT NOT NULL,
            actor       TEXT NOT NULL
        );
        CREATE INDEX customer_changes_by_customer ON customer_changes(customer_id, at);
        """,
    ),
    (
        "core_002_api_tokens",
        """
        CREATE TABLE api_tokens (
            id          TEXT PRIMARY KEY,
            name        TEXT NOT NULL UNIQUE,
            token_hash  TEXT NOT NULL UNIQUE,       -- SHA-256 of the token; the token itself is never stored
            created_at  TEXT NOT NULL,
            revoked_at  TEXT
        );
        """,
    ),
    (
        "core_003_idempotency",
        """
        CREATE TABLE idempotency_keys (
            client      TEXT NOT NULL,
            key         TEXT NOT NULL,
            fingerprint TEXT NOT NULL,              -- SHA-256 of method, path and body
            status      INTEGER NOT NULL,
            body        TEXT NOT NULL,
            created_at  TEXT NOT NULL,
            PRIMARY KEY (client, key)
        );
        CREATE INDEX idempotency_keys_age ON idempotency_keys(created_at);
        """,
    ),
    (
        "core_004_outbox",
        """
        -- AUTOINCREMENT never reuses a number and rolls back with its transaction: the
        -- sequence is gap-free per station, which is what head office checks.
        CREATE TABLE outbox (
            seq             INTEGER PRIMARY KEY AUTOINCREMENT,
            id              TEXT NOT NULL UNIQUE,
            type            TEXT NOT NULL,
            schema_version  INTEGER NOT NULL,
            payload         TEXT NOT NULL,
            created_at      TEXT NOT NULL,
            clock_synced    INTEGER NOT NULL,
            size            INTEGER NOT NULL,
            state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','confirmed')),
            attempts        INTEGER NOT NULL DEFAULT 0,
            sent_at         TEXT,
            delivered_at    TEXT,
            confirmed_at    TEXT
        );
        CREATE INDEX outbox_unconfirmed ON outbox(state, seq) WHERE state != 'confirmed';
        CREATE INDEX outbox_confirmed_at ON outbox(confirmed_at) WHERE state = 'confirmed';
        -- Running totals so the disk budget check is O(1) on every append.
        CREATE TABLE outbox_totals (
            one             INTEGER PRIMARY KEY CHECK (one = 1),
            pending_count   INTEGER NOT NULL,
            pending_bytes   INTEGER NOT NULL,
            max_bytes       INTEGER,                -- disk budget; NULL = unlimited
            max_age_s       INTEGER,                -- oldest unconfirmed event allowed; NULL = unlimited
            refused_count   INTEGER NOT NULL DEFAULT 0,
            last_refused_at TEXT
        );
        INSERT INTO outbox_totals(one, pending_count, pending_bytes) VALUES (1, 0, 0);
        CREATE TRIGGER outbox_totals_ai AFTER INSERT ON outbox BEGIN
            UPDATE outbox_totals SET pending_count = pending_count + 1, pending_bytes = pending_bytes + new.size;
        END;
        CREATE TRIGGER outbox_totals_confirm AFTER UPDATE OF state ON outbox
            WHEN new.state = 'confirmed' AND old.state != 'confirmed' BEGIN
            UPDATE outbox_totals SET pending_count = pending_count - 1, pending_bytes = pending_bytes - new.size;
        END;
        """,
    ),
]
